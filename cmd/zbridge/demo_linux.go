//go:build !lean

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/gateway/region"
	"github.com/zbridge/zbridge/linuxagent"
)

// demoPolicy is the demo Linux agent's policy: the region's COMMANDS port
// takes any client on loopback (no clients file), so the agent runs only
// commands that show and change nothing, whoever the demo runs as.
const demoPolicy = `# zbridge demo: read-only commands, nothing else.
timeout 30s
output-cap 256KiB
allow uname **
allow echo **
allow date
allow uptime
allow hostname
allow id
allow whoami
allow df **
allow free **
default deny
`

// demoPolicyCommands names what demoPolicy allows, for the output.
const demoPolicyCommands = "uname, echo, date, uptime, hostname, id, whoami, df, free"

// startLinux starts the Linux agent demo1 on listen, as `zbridge
// linuxagent` would run it, with a host key made for this run, and gives
// cfg what the region needs to reach it: an SSH key (its public half in
// the agent's authorized_keys, from loopback only), known_hosts pinning
// the agent's host key to the name demo1, and the static target demo1.
// The keys live in d.dir.
func (d *demo) startLinux(listen string, cfg *region.Config) error {
	switch {
	case d.dir == "":
		return errors.New("no directory for its keys")
	case cfg.SSHKeyFile != "":
		return errors.New("the region has your --ssh-key; the demo's agent trusts only a key it makes")
	}
	// As `zbridge linuxagent` does, but root is allowed: the agent's
	// policy is read-only and it listens on loopback.
	asRoot := os.Geteuid() == 0
	if err := (linuxagent.Hardening{AllowRoot: asRoot}).Apply(); err != nil {
		return err
	}
	regionKey, err := demoWriteKey(filepath.Join(d.dir, "region_key"))
	if err != nil {
		return err
	}
	authorized := filepath.Join(d.dir, "authorized_keys")
	line := `from="127.0.0.1,::1" ` + string(ssh.MarshalAuthorizedKey(regionKey.PublicKey()))
	if err := os.WriteFile(authorized, []byte(line), 0o600); err != nil {
		return err
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return err
	}
	policy, err := linuxagent.ParsePolicy(strings.NewReader(demoPolicy))
	if err != nil {
		return err
	}
	srv, err := linuxagent.New(linuxagent.Config{HostKey: hostKey, AuthorizedKeys: authorized, Name: demoLinux,
		Policy: policy, Logger: d.log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		srv.Close()
		return err
	}
	addr := l.Addr().String()
	knownHosts := filepath.Join(d.dir, "known_hosts")
	pin := knownhosts.Line([]string{demoLinux + agentssh.NameSuffix, knownhosts.Normalize(addr)}, hostKey.PublicKey()) + "\n"
	if err := os.WriteFile(knownHosts, []byte(pin), 0o600); err != nil {
		l.Close()
		srv.Close()
		return err
	}
	d.linux, d.linuxDone = srv, make(chan error, 1)
	go func() { d.linuxDone <- srv.Serve(l) }() // waited for by stopServers
	cfg.SSHKeyFile, cfg.KnownHostsFile, cfg.AcceptNewHostKeys = filepath.Join(d.dir, "region_key"), knownHosts, false
	cfg.Linux = append(cfg.Linux, region.LinuxTarget{Name: demoLinux, Addr: addr})

	if asRoot {
		d.out.printf("Linux agent %s on %s (SSH): runs %s (nothing else) as root\n"+
			"    root is allowed because this is a demo on loopback with a read-only policy (zbridge linuxagent refuses root without --allow-root)\n",
			demoLinux, addr, demoPolicyCommands)
	} else {
		d.out.printf("Linux agent %s on %s (SSH): runs %s (nothing else) as %s\n", demoLinux, addr, demoPolicyCommands, demoUserName())
	}
	d.out.printf("    the region's key, the agent's authorized_keys and known_hosts pinning its host key are in %s, removed at exit\n", d.dir)
	return nil
}

// demoWriteKey makes an ed25519 key, writes it to path (OpenSSH format,
// mode 0600) and returns it.
func demoWriteKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "zbridge demo region")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// demoUserName is the name of the user the demo runs as, or its user ID.
func demoUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// linuxShow runs `uname -sr` on demo1 through the region's COMMANDS port
// at addr and prints the response.
func (d *demo) linuxShow(ctx context.Context, addr string) {
	d.command(ctx, addr, "linux:"+demoLinux, linuxagent.QuoteCommand("uname", "-sr"), fmt.Sprintf("linux:%s $ uname -sr", demoLinux))
}
