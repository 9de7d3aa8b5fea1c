package audit_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/audit"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	log, err := audit.New(audit.Config{
		Path:   path,
		Region: "ZBR1",
		Logger: logrus.New().WithField("component", "audit"),
		// The region appends r.Event() to its event stream.
		Publish: func(ctx context.Context, r audit.Record) error {
			fmt.Println("event:", r.Event().Text)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC)

	// Before a command runs, its start record is on disk.
	rec := audit.Record{Time: t0, Kind: audit.KindCommand, Phase: audit.PhaseStart,
		Client: "OPSAUTO", Remote: "10.1.2.3:50312", Session: "ZBR1-7", Server: "commands",
		Target: "linux:web1", Command: "uptime", ID: "ops-17", Rule: "role ops: linux:web* uptime"}
	if err := log.Write(ctx, rec); err != nil {
		// Fail closed: the command is refused, not run unrecorded.
		fmt.Println("refused:", err)
		return
	}

	// res, err := router.Run(ctx, req, out)
	res := commands.Result{RC: 0, Duration: 41 * time.Millisecond}
	rec.Phase, rec.Time, rec.OutputBytes = audit.PhaseEnd, t0.Add(41*time.Millisecond), 120
	rec.SetResult(res, nil)
	// The end record is written even when the client went away.
	if err := log.Write(context.WithoutCancel(ctx), rec); err != nil {
		fmt.Println(err)
	}

	// A refused logon has one record.
	if err := log.Write(ctx, audit.Record{Time: t0, Kind: audit.KindLogon, Client: "MALLORY",
		Remote: "192.0.2.9:4000", Server: "commands", Outcome: audit.OutcomeRefused,
		Code: "auth", Message: "bad client name or secret"}); err != nil {
		fmt.Println(err)
	}

	if err := log.Close(); err != nil {
		panic(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(data))
	// Output:
	// event: command start client=OPSAUTO remote=10.1.2.3:50312 session=ZBR1-7 server=commands target=linux:web1 id=ops-17 rule="role ops: linux:web* uptime" cmd="uptime"
	// event: command end client=OPSAUTO remote=10.1.2.3:50312 session=ZBR1-7 server=commands target=linux:web1 id=ops-17 outcome=ok rc=0 duration_ms=41 output_bytes=120 rule="role ops: linux:web* uptime" cmd="uptime"
	// event: logon client=MALLORY remote=192.0.2.9:4000 server=commands outcome=refused code=auth message="bad client name or secret"
	// {"time":"2025-03-01T08:30:00.000Z","region":"ZBR1","kind":"command","phase":"start","client":"OPSAUTO","remote":"10.1.2.3:50312","session":"ZBR1-7","server":"commands","target":"linux:web1","command":"uptime","id":"ops-17","rule":"role ops: linux:web* uptime"}
	// {"time":"2025-03-01T08:30:00.041Z","region":"ZBR1","kind":"command","phase":"end","client":"OPSAUTO","remote":"10.1.2.3:50312","session":"ZBR1-7","server":"commands","target":"linux:web1","command":"uptime","id":"ops-17","outcome":"ok","rc":0,"duration_ms":41,"output_bytes":120,"rule":"role ops: linux:web* uptime"}
	// {"time":"2025-03-01T08:30:00.000Z","region":"ZBR1","kind":"logon","client":"MALLORY","remote":"192.0.2.9:4000","server":"commands","outcome":"refused","code":"auth","message":"bad client name or secret"}
}

// The region reopens the file on SIGHUP, after logrotate has moved it.
func ExampleLog_Reopen() {
	lg := logrus.New().WithField("component", "audit")
	log, err := audit.New(audit.Config{Path: "/var/log/zbridge/audit.log", Region: "ZBR1", Logger: lg})
	if err != nil {
		panic(err)
	}
	defer log.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := log.Reopen(); err != nil {
				// The Log goes on writing to the file it had.
				lg.WithError(err).Error("audit log not reopened")
			}
		case <-ctx.Done():
			return
		}
	}
}
