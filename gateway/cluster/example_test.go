package cluster_test

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
)

// This shows how a region joins a cluster: its router's linux executor
// becomes the cluster's, over the region's own SSH executor, and forwarded
// requests come back in through the router.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	var (
		sshExec commands.Executor          // the region's Linux executor
		holds   func(commands.Target) bool // whether this region reaches a target
		agents  func() []cluster.Agent     // the agents it holds now
		router  *commands.Router           // built below
		logger  = logrus.New().WithField("component", "cluster")
	)
	// The same key in every region, in a file only the region can read.
	key, err := cluster.LoadKey("/etc/zbridge/cluster.key")
	if err != nil {
		log.Fatal(err)
	}
	c, err := cluster.New(cluster.Config{
		Client:      rdb,
		Region:      "REGION1",
		Key:         key,
		Addrs:       cluster.Addrs{Commands: "zbridge1.example.com:7050"},
		LocalAgents: agents,
		Run: func(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
			return router.Run(ctx, req, out)
		},
		Logger: logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	router = commands.NewRouter(commands.Config{IDPrefix: "REGION1", Executors: map[commands.Kind]commands.Executor{
		commands.KindLinux: c.Executor(commands.KindLinux, sshExec, holds),
	}})
	c.Start()
	defer c.Close()

	// ... serve COMMANDS with router; call c.Touch() when an agent connects.
}
