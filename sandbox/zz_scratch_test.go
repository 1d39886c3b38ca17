package sandbox

import (
	"context"
	"testing"
)

func TestScratchMessages(t *testing.T) {
	r := NewBubblewrap()
	for _, s := range []Spec{
		{Command: []string{"/usr/bin/no-such"}},
		{Command: []string{"/usr/bin/true"}, Dir: "/nowhere"},
		{Command: []string{"/usr/bin/true"}, Mounts: []Mount{{Host: "/nope", Sandbox: "/input"}}},
		{Command: []string{"/usr/bin/true"}, Mounts: []Mount{{Host: "/etc", Sandbox: "/input"}, {Host: "/usr", Sandbox: "/input/newdir"}}},
		{Command: []string{"/usr/bin/sh", "-c", "exit 200"}},
		{Command: []string{"/usr/bin/sh", "-c", "kill -ABRT $$"}},
	} {
		res, err := r.Run(context.Background(), s)
		t.Logf("%+v -> %+v err=%v resErr=%v", s.Command, res, err, res.Err())
	}
	_, err := (&Bubblewrap{Path: "/x/bwrap"}).Run(context.Background(), Spec{Command: []string{"/a"}})
	t.Log(err)
}
