//go:build !lean

package main

import (
	"context"
	"crypto/rand"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/vmagent"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

// demoGuests are the simulated z/VM system's guests the demo logs on at
// start (as AUTOLOG1 would), and demoGuestMessages what they send to the
// operator's console while the demo runs: console lines the z/VM agent
// turns into events. Each fits on one console line (79 characters with
// the "hh:mm:ss * MSG FROM LINUX01 : " CP puts before it).
var (
	demoGuests        = []string{"TCPIP", "LINUX01", "LINUX02"}
	demoGuestMessages = []struct {
		warning    bool
		from, text string
	}{
		{false, "LINUX01", "nightly backup of /srv done, 14.2 GiB"},
		{true, "LINUX02", "filesystem /var/lib/pgsql is 91% full"},
		{false, "TCPIP", "OSA device 0600 link restored"},
	}
)

// startSim starts the simulated z/VM system on listen, every userid with
// one password made for this run.
func (d *demo) startSim(listen string) error {
	d.simPass = rand.Text()[:8] // z/VM passwords are 8 characters
	sim, err := zvmsim.New(zvmsim.Config{System: demoSystem, Password: d.simPass, Autolog: demoGuests, Logger: d.log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	d.sim, d.simAddr, d.simDone = sim, l.Addr().String(), make(chan error, 1)
	go func() { d.simDone <- sim.Serve(l) }() // waited for by stopServers
	d.out.printf("z/VM simulator %s on %s (TN3270): the z/VM agent logs on as OPERATOR\n"+
		"    to look yourself: x3270 %s, log on as MAINT, password %s, and type MSG OPERATOR hello: it comes back below\n",
		demoSystem, d.simAddr, d.simAddr, d.simPass)
	return nil
}

// zvmAgent runs the z/VM agent as `zbridge vmagent` does: a console
// scraper logged on to the simulator's OPERATOR console, a VMMON session
// to the region at vmmon and a QUERY NAMES poll. Once the console is
// logged on it has a guest send the operator a message, runs QUERY TIME
// through the region's COMMANDS port at cmds (unless cmds is ""), and has
// a guest send another message every ten feed intervals. It returns when
// ctx ends, after its goroutines.
func (d *demo) zvmAgent(ctx context.Context, vmmon, cmds string) {
	if d.dir == "" {
		d.out.printf("z/VM agent: not started: no directory for its spool\n")
		return
	}
	spoolDir := filepath.Join(d.dir, "spool")
	spool, err := vmagent.OpenSpool(spoolDir, 64<<20)
	if err != nil {
		d.out.printf("z/VM agent: not started: %v\n", err)
		return
	}
	defer spool.Close()
	log := d.log.WithField("system", demoSystem)
	names := &vmagent.NamesWatcher{System: demoSystem, Publish: spool.Add, Log: log}
	publish := func(evs ...*protocol.Event) error {
		names.Observe(evs...)
		return spool.Add(evs...)
	}
	sc, err := vmagent.NewScraper(vmagent.ScraperConfig{Addr: d.simAddr, User: zvmsim.Operator, Password: d.simPass,
		System: demoSystem, Publish: publish, Logger: log})
	if err != nil {
		d.out.printf("z/VM agent: not started: %v\n", err)
		return
	}
	names.Console = sc
	agent, err := vmagent.New(vmagent.Config{VMMon: vmmon, System: demoSystem, Spool: spool, Logger: d.log}, sc)
	if err != nil {
		d.out.printf("z/VM agent: not started: %v\n", err)
		return
	}
	d.out.printf("z/VM agent for %s: console %s as OPERATOR, region VMMON %s, spool %s\n", demoSystem, d.simAddr, vmmon, spoolDir)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := sc.Serve(ctx); ctx.Err() == nil {
			d.out.printf("z/VM agent: console: %v\n", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := agent.Run(ctx); ctx.Err() == nil {
			d.out.printf("z/VM agent: VMMON: %v\n", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := sc.Ready(ctx); err != nil {
			return // Serve says why
		}
		wg.Add(1)
		go func() { defer wg.Done(); names.Run(ctx) }()
		if cmds != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.command(ctx, cmds, "zvm:"+demoSystem, "QUERY TIME", "zvm:"+demoSystem+" QUERY TIME")
			}()
		}
		d.guestFeed(ctx)
	}()
}

// guestFeed has the simulated guests send the operator's console a
// message at once and then every ten feed intervals, until ctx ends.
func (d *demo) guestFeed(ctx context.Context) {
	t := time.NewTicker(10 * d.opts.interval)
	defer t.Stop()
	for i := 0; ; i++ {
		m := demoGuestMessages[i%len(demoGuestMessages)]
		send := d.sim.Message
		if m.warning {
			send = d.sim.Warning
		}
		if err := send(m.from, zvmsim.Operator, m.text); err != nil {
			// The agent's console is between sessions: CP drops
			// output for a disconnected user, and so does the demo.
			d.log.WithError(err).Debug("demo: z/VM guest message not sent")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
