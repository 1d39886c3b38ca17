// Package enclave is the only part of cleanroom that holds plaintext: it
// unwraps dataset keys, decrypts inputs into the sandbox, runs the
// computations, and encrypts their results before they reach storage.
package enclave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// Enclave runs jobs. NewEnclave sets defaults; exported fields configure it
// before Open.
type Enclave struct {
	Store   cleanroom.Store
	Blobs   cleanroom.BlobStore
	Sandbox sandbox.Runner

	Concurrency int    // jobs run at once; default: number of cores
	ScratchDir  string // where decrypted inputs live during a run; default: os.TempDir()
	Python      string // interpreter inside the sandbox
	Kit         string // host directory mounted read-only at worker.KitMount: cleanroom-worker and the Python helpers
	// Images are the worker images' root file systems by image name
	// ("python", "r"); a missing one runs on the sandbox's own root.
	Images     map[string]string
	JobTimeout time.Duration // wall time of one computation
	MaxLogSize int           // bytes of stdout+stderr kept per job (the tail)
	Logger     *slog.Logger
	Now        func() time.Time

	// Limits of one computation besides JobTimeout; 0 sets no limit.
	// NewEnclave sets sandbox's defaults.
	JobMemory      int64   // bytes of memory, its /tmp and /output included
	JobProcesses   int     // processes and threads at once
	JobCPUs        float64 // CPU time per second of wall time; 0 for no limit
	JobOutputSize  int64   // bytes written to /output
	JobOutputFiles int     // files and directories in /output

	// JobUID is where the host users that jobs run as start when the
	// server runs as root: one per job running at once, each with a group
	// of the same number, the first free ones from JobUID up that no other
	// server on the machine holds. Nothing else may use them.
	JobUID int

	key    *crypt.PrivateKey
	wake   chan struct{}
	ctx    context.Context // ends when the enclave closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	slots  chan *sandbox.User // job users free to run a job; nil ones without root
	leases []*os.File         // locks on the job users, held while open

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	testsOf map[string]int // draft tests under way, by owner
	ended   chan struct{}  // closed and replaced whenever a job ends
}

// NewEnclave returns an enclave holding key.
func NewEnclave(key *crypt.PrivateKey) *Enclave {
	return &Enclave{
		Concurrency: runtime.NumCPU(),
		Python:      "/usr/bin/python3",
		JobTimeout:  sandbox.DefaultTimeout,
		MaxLogSize:  1 << 20,
		Logger:      slog.Default(),
		Now:         time.Now,
		key:         key,
		wake:        make(chan struct{}, 1),
		running:     map[string]context.CancelCauseFunc{},
		testsOf:     map[string]int{},
		ended:       make(chan struct{}),

		JobMemory:      sandbox.DefaultMemory,
		JobProcesses:   sandbox.DefaultProcesses,
		JobOutputSize:  sandbox.DefaultOutputSize,
		JobOutputFiles: sandbox.DefaultOutputFiles,
		JobUID:         DefaultJobUID,
	}
}

// JobEnded returns a channel that is closed when the next job ends, so
// that a waiting client learns of it at once instead of polling.
func (e *Enclave) JobEnded() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended
}

func (e *Enclave) announceJobEnded() {
	e.mu.Lock()
	defer e.mu.Unlock()
	close(e.ended)
	e.ended = make(chan struct{})
}

// Attestation returns the enclave's attestation document.
func (e *Enclave) Attestation() cleanroom.Attestation {
	kem, kdf, aead := crypt.Suite()
	return cleanroom.Attestation{Platform: crypt.SoftwarePlatform, PublicKey: e.key.PublicKey(), KEM: kem, KDF: kdf, AEAD: aead}
}

// CheckDatasetKey verifies that sealed is a dataset key sealed to this
// enclave for exactly this clean room, node and ciphertext, so a mistake
// is refused when the dataset is published, not when a job runs.
func (e *Enclave) CheckDatasetKey(dcrID, node, manifestHash string, sealed []byte) error {
	if _, err := e.key.OpenDatasetKey(dcrID, node, manifestHash, sealed); err != nil {
		return cleanroom.Errorf(cleanroom.EINVALID, "the sealed dataset key does not open for node %q: it was sealed to another enclave key or for another clean room, node or file; seal it again for this upload", node)
	}
	return nil
}

// Open marks jobs left running by a previous server as failed and starts
// the workers.
func (e *Enclave) Open() error {
	n, err := e.Store.FailRunningJobs(context.Background(), "the server stopped while the job was running; run it again", e.Now())
	if err != nil {
		return fmt.Errorf("fail interrupted jobs: %w", err)
	} else if n > 0 {
		e.Logger.Warn("marked jobs interrupted by the last shutdown as failed", "jobs", n)
	}
	if err := e.prepareScratch(); err != nil {
		return err
	}
	if err := e.reapScratch(); err != nil {
		return err
	}
	if err := e.leaseUsers(max(e.Concurrency, 1)); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx, e.cancel = ctx, cancel
	for i := 0; i < max(e.Concurrency, 1); i++ {
		e.wg.Add(1)
		go e.work(ctx)
	}
	return nil
}

// Close stops the workers; jobs still running are cancelled and recorded as failed.
func (e *Enclave) Close() error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	e.releaseUsers()
	return nil
}

// takeSlot waits for a free job user, or for ctx to end.
func (e *Enclave) takeSlot(ctx context.Context) (*sandbox.User, error) {
	select {
	case u := <-e.slots:
		return u, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Notify tells the workers that a job was queued.
func (e *Enclave) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

var errCancelled = errors.New("cancelled by the analyst")

// Cancel ends a queued or running job. Returns ECONFLICT if it has already ended.
func (e *Enclave) Cancel(ctx context.Context, job *cleanroom.Job) error {
	for {
		e.mu.Lock()
		stop := e.running[job.ID]
		e.mu.Unlock()
		if stop != nil {
			stop(errCancelled)
			return nil
		}
		err := e.Store.CancelQueuedJob(ctx, job.ID, "cancelled before it started", e.Now())
		if err == nil {
			e.announceJobEnded()
		}
		if cleanroom.ErrorCode(err) != cleanroom.ECONFLICT {
			return err
		}
		// No longer queued: a worker has just claimed it and is about to
		// register it as running, or it is ending. Look again.
		j, err := e.Store.FindJob(ctx, job.ID)
		if err != nil {
			return err
		} else if j.State.Done() {
			return cleanroom.Errorf(cleanroom.ECONFLICT, "job has already ended (%s)", j.State)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (e *Enclave) work(ctx context.Context) {
	defer e.wg.Done()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		job, err := e.Store.ClaimJob(ctx, e.Now())
		if err == nil {
			e.runJob(ctx, job)
			continue
		} else if cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND && ctx.Err() == nil {
			e.Logger.Error("claim job", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-poll.C:
		}
	}
}

// SealFileKey returns the key of one of a job's stored ciphertexts (its
// result or logs: header is its header, ad its associated data), sealed
// with HPKE to recipient (a client's 32-byte X25519 public key) and bound
// to that ciphertext (crypt.DownloadKeyInfo). It is the ciphertext's own
// file key (crypt.FileKey), not the job's key, so it opens nothing else
// the job's key encrypts. Returns EINVALID for a recipient that is not an
// X25519 public key.
func (e *Enclave) SealFileKey(job *cleanroom.Job, header, ad, recipient []byte) ([]byte, error) {
	key, err := e.key.Open(crypt.ResultKeyInfo(job.ID), job.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("unseal result key of job %s: %w", job.ID, err)
	}
	fileKey, err := crypt.FileKey(key, header, ad)
	if err != nil {
		return nil, fmt.Errorf("stored ciphertext of job %s: %w", job.ID, err)
	}
	sealed, err := crypt.Seal(recipient, crypt.DownloadKeyInfo(ad), fileKey)
	if err != nil {
		return nil, cleanroom.Errorf(cleanroom.EINVALID, "the recipient key is not an X25519 public key: %v", err)
	}
	return sealed, nil
}
