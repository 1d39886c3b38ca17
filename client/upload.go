package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
	"github.com/cleanroom-dev/cleanroom/worker/table"
)

// Upload is one dataset to encrypt, upload and publish.
type Upload struct {
	DCRID string
	Node  string
	Data  io.Reader
	// Size of Data in bytes, or -1 if unknown. With a size the upload is
	// sent with its exact length, which lets the server tell a complete
	// upload from one cut short.
	Size int64
	// Key is the 32-byte dataset key; nil makes a new one.
	Key []byte
	// Progress, if set, is called with the ciphertext bytes sent so far.
	Progress func(sent, total int64)
}

// UploadDataset encrypts a dataset on this machine, streams the ciphertext
// to the server in constant memory, seals the dataset key to the enclave
// for exactly this clean room, node and ciphertext, and publishes it.
func (c *Client) UploadDataset(ctx context.Context, u Upload) (*cleanroom.Dataset, error) {
	key := u.Key
	if key == nil {
		var err error
		if key, err = crypt.NewKey(); err != nil {
			return nil, err
		}
	}
	att, err := c.Enclave(ctx)
	if err != nil {
		return nil, err
	}
	software, err := crypt.CheckAttestation(att.Platform, att.PublicKey, att.KEM, att.KDF, att.AEAD)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.URL, err)
	}
	if err := c.checkWorkers(ctx); err != nil {
		return nil, err
	}
	if software && c.Warn != nil {
		c.warnSoftware.Do(func() {
			c.Warn(fmt.Sprintf("the enclave of %s runs in software mode: nothing but the server's operator vouches for its key, so the operator could decrypt the datasets published to it", c.URL))
		})
	}
	blob, hash, err := c.uploadEncrypted(ctx, u, key)
	if err != nil {
		return nil, err
	}
	if blob.Hash != hash {
		return nil, fmt.Errorf("server stored the upload as %s but the ciphertext sent hashes to %s; upload again", blob.Hash, hash)
	}
	return c.PublishDataset(ctx, u.DCRID, u.Node, blob.Hash, key, att.PublicKey)
}

// PublishDataset publishes an already uploaded ciphertext to a data node,
// sealing key to the enclave's public key.
func (c *Client) PublishDataset(ctx context.Context, dcrID, node, manifestHash string, key, enclaveKey []byte) (*cleanroom.Dataset, error) {
	sealed, err := crypt.SealDatasetKey(enclaveKey, dcrID, node, manifestHash, key)
	if err != nil {
		return nil, err
	}
	var out cleanroom.Dataset
	req := cleanroom.PublishDatasetRequest{ManifestHash: manifestHash, SealedKey: sealed}
	return &out, c.do(ctx, "PUT", nodePath(dcrID, node)+"/dataset", req, &out)
}

// uploadEncrypted streams the encryption of u.Data as the request body and
// returns the stored blob and the hash of what was sent.
func (c *Client) uploadEncrypted(ctx context.Context, u Upload, key []byte) (*cleanroom.Blob, string, error) {
	length := int64(-1)
	if u.Size >= 0 {
		length = crypt.CiphertextSize(u.Size)
	}
	pr, pw := io.Pipe()
	h := sha256.New()
	go func() {
		ew, err := crypt.NewEncryptWriter(pw, key, crypt.DatasetAD)
		if err == nil {
			// Reads of a segment at a time: 1/32 of the system calls of io.Copy's 32 KiB buffer.
			_, err = io.CopyBuffer(ew, u.Data, make([]byte, 1<<20))
		}
		if err == nil {
			err = ew.Close()
		}
		pw.CloseWithError(err)
	}()
	body := &progressReader{r: io.TeeReader(pr, h), total: length, progress: u.Progress}
	resp, err := c.send(ctx, "POST", "/api/v1/blobs", body, "application/octet-stream", length)
	pr.CloseWithError(io.ErrClosedPipe) // stop the encrypting goroutine if the request ended early
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var blob cleanroom.Blob
	if err := decode(resp.Body, &blob); err != nil {
		return nil, "", err
	}
	return &blob, hex.EncodeToString(h.Sum(nil)), nil
}

type progressReader struct {
	r        io.Reader
	sent     int64
	total    int64
	progress func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.progress != nil && n > 0 {
		p.progress(p.sent, p.total)
	}
	return n, err
}

// ValidationReport returns the validation report of the dataset published
// to a table node, once the enclave has checked it.
func (c *Client) ValidationReport(ctx context.Context, dcrID, node string) (*table.Report, error) {
	view, err := c.DCR(ctx, dcrID)
	if err != nil {
		return nil, err
	}
	job := ""
	for _, ds := range view.Datasets {
		if ds.Node == node && ds.ValidationJob != "" {
			if _, err := c.Wait(ctx, ds.ValidationJob); err != nil {
				return nil, err
			}
			job = ds.ValidationJob
		}
	}
	if job == "" {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "node %q has no dataset being validated; publish one first", node)
	}
	rc, err := c.sealedDownload(ctx, nodePath(dcrID, node)+"/dataset/report?job="+url.QueryEscape(job), job, crypt.ResultAD)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var rep table.Report
	return &rep, decode(rc, &rep)
}
