package vmagent

import (
	"time"

	"github.com/zbridge/zbridge/gateway/session"
)

func vmmonSession() session.Config {
	return session.Config{Heartbeat: time.Second, MinHeartbeat: time.Second}
}
