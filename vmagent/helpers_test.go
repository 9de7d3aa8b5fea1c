package vmagent

import (
	"os"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/internal/testparallel"
)

func TestMain(m *testing.M) {
	testparallel.Raise(8) // the parallel tests wait for the simulated console
	os.Exit(m.Run())
}

func vmmonSession() session.Config {
	return session.Config{Heartbeat: time.Second, MinHeartbeat: time.Second}
}
