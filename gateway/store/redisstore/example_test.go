package redisstore_test

import (
	"fmt"

	"github.com/zbridge/zbridge/gateway/store/redisstore"
)

func ExampleParseURL() {
	for _, u := range []string{
		"redis://:secret@10.0.0.5:6379/2",
		"rediss://sentinel1,sentinel2:26380/0?master=zbridge",
		"redis://node1:7000,node2:7000,node3:7000",
	} {
		o, err := redisstore.ParseURL(u)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("addrs=%v db=%d master=%q cluster=%v tls=%v\n", o.Addrs, o.DB, o.MasterName, o.IsClusterMode, o.TLSConfig != nil)
	}
	_, err := redisstore.ParseURL("redis://:secret@10.0.0.5:0")
	fmt.Println(err)
	// Output:
	// addrs=[10.0.0.5:6379] db=2 master="" cluster=false tls=false
	// addrs=[sentinel1:26379 sentinel2:26380] db=0 master="zbridge" cluster=false tls=true
	// addrs=[node1:7000 node2:7000 node3:7000] db=0 master="" cluster=true tls=false
	// redisstore: bad Redis URL: address 1: bad port: want a number from 1 to 65535
}

func ExampleKey() {
	fmt.Println(redisstore.Key("zbridge", "events"))
	fmt.Println(redisstore.Key("zbridge", "region", "R1"))
	// Output:
	// {zbridge}:events
	// {zbridge}:region:R1
}

func ExampleParseURLConfig() {
	u, err := redisstore.ParseURLConfig("redis://s1,s2,s3?master=zbridge&replica_timeout=1s")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Pass u.Client to redis.NewUniversalClient, and apply u to the
	// Store's Config.
	cfg := redisstore.Config{Prefix: "zbridge"}
	u.Apply(&cfg)
	fmt.Printf("sentinels=%v master=%s min_replicas=%d replica_timeout=%v\n",
		u.Client.Addrs, u.Client.MasterName, cfg.MinReplicas, cfg.ReplicaTimeout)
	// Output:
	// sentinels=[s1:26379 s2:26379 s3:26379] master=zbridge min_replicas=1 replica_timeout=1s
}
