package linuxagent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
)

// loadHostKey reads the host key from path, or, when path does not exist,
// generates an ed25519 key and writes it there (mode 0600, OpenSSH format)
// with its public half in path.pub. A key file that group or other may
// read or write is refused, as sshd refuses one. generated reports whether
// the key is new.
func loadHostKey(path string) (signer ssh.Signer, generated bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		signer, err = generateHostKey(path)
		return signer, err == nil, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrHostKey, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: %s is not a regular file", ErrHostKey, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, false, fmt.Errorf("%w: %s has mode %04o: a host key must not be accessible by group or other (chmod 600 it)",
			ErrHostKey, path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrHostKey, err)
	}
	signer, err = ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrHostKey, path, err)
	}
	return signer, false, nil
}

func generateHostKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrHostKey, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrHostKey, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "zbridge linuxagent host key")
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrHostKey, err)
	}
	// O_EXCL: never overwrite a key another process wrote meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostKey, err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%w: write %s: %w", ErrHostKey, path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("%w: write %s: %w", ErrHostKey, path, err)
	}
	// The public half, for pinning on the region; not needed by the agent.
	_ = os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)
	return signer, nil
}
