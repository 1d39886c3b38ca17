package enclave

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cleanroom-dev/cleanroom/crypt"
)

// LoadOrCreateKey reads the enclave's private key from path, creating it
// (mode 0600) on first start. In software mode this file is what the
// operator must protect: whoever reads it can unwrap every dataset key.
func LoadOrCreateKey(path string) (*crypt.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := crypt.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create enclave key: %w", err)
		}
		if _, err := f.Write(k.Bytes()); err != nil {
			f.Close()
			return nil, fmt.Errorf("write enclave key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return k, f.Close()
	} else if err != nil {
		return nil, fmt.Errorf("read enclave key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("enclave key %s is readable by other users (mode %v); run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	k, err := crypt.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("enclave key %s is damaged: %w", path, err)
	}
	return k, nil
}
