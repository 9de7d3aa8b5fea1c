package agentssh_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/agentssh"
)

// ExamplePool runs a command on a Linux agent, printing its output as it
// arrives.
func ExamplePool() {
	signer, err := agentssh.LoadSigner("/etc/zbridge/region_ed25519")
	if err != nil {
		log.Fatal(err)
	}
	pool, err := agentssh.New(agentssh.Config{
		Signer:         signer,
		KnownHostsFile: "/etc/zbridge/known_hosts",
		AcceptNew:      true,
		Logger:         logrus.StandardLogger().WithField("region", "ZB01"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	pool.Add("LNXWEB1", "lnxweb1.example.com") // port 7022, the agent's

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := pool.Run(ctx, "LNXWEB1", agentssh.Command{ID: "C0001", Line: "df -h /", Timeout: 20 * time.Second},
		func(o agentssh.Output) { fmt.Printf("%d %s\n", o.Stream, o.Data) })
	if err != nil {
		log.Fatal(err) // errors.Is(err, agentssh.ErrNotConnected), ErrBusy, ErrTimeout...
	}
	fmt.Println("exit status", res.ExitStatus)
}
