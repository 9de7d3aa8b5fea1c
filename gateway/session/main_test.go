package session_test

import (
	"os"
	"testing"

	"github.com/zbridge/zbridge/internal/testparallel"
)

func TestMain(m *testing.M) {
	testparallel.Raise(8) // the parallel tests wait for timeouts
	os.Exit(m.Run())
}
