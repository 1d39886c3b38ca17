package crypt

import (
	"bytes"
	"crypto/hpke"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC9180 checks the suite against RFC 9180 Appendix A.1.1.
func TestRFC9180(t *testing.T) {
	data, err := os.ReadFile("testdata/rfc9180-a1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Info, SkRm, PkRm, Enc string
		Encryptions           []struct{ Aad, Pt, Ct string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if hpkeKEM.ID() != 0x20 || hpkeKDF.ID() != 1 || hpkeAEAD.ID() != 1 {
		t.Fatalf("suite is %#x/%#x/%#x, want the suite of A.1", hpkeKEM.ID(), hpkeKDF.ID(), hpkeAEAD.ID())
	}
	k, err := ParsePrivateKey(unhex(t, v.SkRm))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.PublicKey()); got != v.PkRm {
		t.Fatalf("public key = %s, want pkRm %s", got, v.PkRm)
	}
	r, err := hpke.NewRecipient(unhex(t, v.Enc), k.key, hpkeKDF, hpkeAEAD, unhex(t, v.Info))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range v.Encryptions {
		pt, err := r.Open(unhex(t, e.Aad), unhex(t, e.Ct))
		if err != nil || !bytes.Equal(pt, unhex(t, e.Pt)) {
			t.Fatalf("encryption %d: Open = %x, %v; want %s", i, pt, err, e.Pt)
		}
	}
}

func TestHPKERoundTrip(t *testing.T) {
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePrivateKey(k.Bytes())
	if err != nil || !bytes.Equal(k2.PublicKey(), k.PublicKey()) || len(k.PublicKey()) != 32 {
		t.Fatalf("ParsePrivateKey(Bytes()) does not round trip: %v", err)
	}
	info := ResultKeyInfo("job1")
	sealed, err := Seal(k.PublicKey(), info, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 32+6+16 {
		t.Errorf("sealed is %d bytes, want enc 32 + plaintext 6 + tag 16", len(sealed))
	}
	if pt, err := k2.Open(info, sealed); err != nil || string(pt) != "secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	other, _ := GeneratePrivateKey()
	tampered := bytes.Clone(sealed)
	tampered[40] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"wrong info": func() ([]byte, error) { return k.Open(ResultKeyInfo("job2"), sealed) },
		"wrong key":  func() ([]byte, error) { return other.Open(info, sealed) },
		"tampered":   func() ([]byte, error) { return k.Open(info, tampered) },
		"truncated":  func() ([]byte, error) { return k.Open(info, sealed[:20]) },
		"enc only":   func() ([]byte, error) { return k.Open(info, sealed[:32]) },
		"empty":      func() ([]byte, error) { return k.Open(info, nil) },
		"zero enc":   func() ([]byte, error) { return k.Open(info, make([]byte, len(sealed))) },
	} {
		if _, err := open(); !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: err = %v, want ErrIntegrity", name, err)
		}
	}
	if _, err := ParsePrivateKey(make([]byte, 31)); err == nil {
		t.Error("ParsePrivateKey accepted 31 bytes")
	}
	if _, err := Seal(make([]byte, 31), info, nil); err == nil {
		t.Error("Seal accepted a 31-byte public key")
	}
}

func TestDatasetKey(t *testing.T) {
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	dcr, hash := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	dk, _ := NewKey()
	sealed, err := SealDatasetKey(k.PublicKey(), dcr, "customers", hash, dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.OpenDatasetKey(dcr, "customers", hash, sealed); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("OpenDatasetKey = %x, %v", got, err)
	}
	for _, c := range []struct{ name, dcr, node, hash string }{
		{"other clean room", strings.Repeat("ab", 31) + "ac", "customers", hash},
		{"other node", dcr, "customers2", hash},
		{"other manifest hash", dcr, "customers", strings.Repeat("cd", 31) + "ce"},
	} {
		if _, err := k.OpenDatasetKey(c.dcr, c.node, c.hash, sealed); !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: err = %v, want ErrIntegrity", c.name, err)
		}
	}
	short, _ := Seal(k.PublicKey(), DatasetKeyInfo(dcr, "customers", hash), dk[:16])
	if _, err := k.OpenDatasetKey(dcr, "customers", hash, short); !errors.Is(err, ErrIntegrity) {
		t.Errorf("16-byte dataset key: err = %v, want ErrIntegrity", err)
	}
	for _, c := range []struct{ name, dcr, node, hash string }{
		{"uppercase id", strings.ToUpper(dcr), "customers", hash},
		{"short hash", dcr, "customers", hash[:62]},
		{"empty node", dcr, "", hash},
		{"NUL in node", dcr, "a\x00b", hash},
	} {
		if _, err := SealDatasetKey(k.PublicKey(), c.dcr, c.node, c.hash, dk); err == nil {
			t.Errorf("SealDatasetKey accepted %s", c.name)
		}
	}
	if _, err := SealDatasetKey(k.PublicKey(), dcr, "customers", hash, dk[:16]); err == nil {
		t.Error("SealDatasetKey accepted a 16-byte key")
	}
}

func TestInfoStrings(t *testing.T) {
	if got := string(DatasetKeyInfo("d", "n", "h")); got != "cleanroom dataset key v1\x00d\x00n\x00h" {
		t.Errorf("DatasetKeyInfo = %q", got)
	}
	if got := string(ResultKeyInfo("j")); got != "cleanroom result key v1\x00j" {
		t.Errorf("ResultKeyInfo = %q", got)
	}
	if got := string(ResultAD("j")); got != "cleanroom result v1\x00j" {
		t.Errorf("ResultAD = %q", got)
	}
}
