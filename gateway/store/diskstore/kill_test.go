package diskstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// killChildEnv names the data directory and policy of a child that only
// appends until it is killed; killStatusEnv those of a child that only
// appends status records.
const (
	killChildEnv  = "DISKSTORE_KILL_CHILD"
	killStatusEnv = "DISKSTORE_KILL_STATUS_CHILD"
)

// TestMain lets the test binary be that child.
func TestMain(m *testing.M) {
	if v := os.Getenv(killChildEnv); v != "" {
		appendUntilKilled(v)
		return
	}
	if v := os.Getenv(killStatusEnv); v != "" {
		appendStatusUntilKilled(v)
		return
	}
	os.Exit(m.Run())
}

// appendUntilKilled appends batches and prints the last ID of each once
// Append (and, but for SyncOS, Sync) returned: what the store
// acknowledged.
func appendUntilKilled(v string) {
	dir, policy, _ := strings.Cut(v, ",")
	s, err := Open(Config{Dir: dir, Sync: SyncPolicy(policy), Logger: quiet()})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		evs := storetest.Events("k"+strconv.Itoa(i), 1+i%50)
		if err := s.Append(bg, evs); err != nil {
			fmt.Fprintln(w, "append:", err)
			w.Flush()
			os.Exit(1)
		}
		if err := s.Sync(bg); err != nil {
			os.Exit(1)
		}
		fmt.Fprintln(w, evs[len(evs)-1].ID, len(evs))
		w.Flush()
	}
}

// TestKillDuringAppends SIGKILLs a process appending as fast as it can,
// three times on the same directory: every batch it acknowledged is there
// after each restart, whole and in order, and the journal still opens.
func TestKillDuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes: not in -short")
	}
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways, SyncOS} {
		t.Run(string(p), func(t *testing.T) {
			dir := t.TempDir()
			var acked []protocol.ID
			for round := 0; round < 3; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), killChildEnv+"="+dir+","+string(p))
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				for n := 0; n < 300 && sc.Scan(); n++ {
					var id string
					var k int
					if _, err := fmt.Sscan(sc.Text(), &id, &k); err != nil {
						t.Fatalf("child: %s", sc.Text())
					}
					pid, err := protocol.ParseID(id)
					if err != nil {
						t.Fatal(err)
					}
					acked = append(acked, pid)
				}
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if len(acked) == 0 {
					t.Fatal("the child acknowledged nothing")
				}
			}
			s := open(t, Config{Dir: dir, Sync: p})
			defer s.Close()
			evs, _, err := s.Read(bg, protocol.ID{}, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			have := make(map[protocol.ID]bool, len(evs))
			for i, e := range evs {
				if i > 0 && !evs[i-1].ID.Less(e.ID) {
					t.Fatalf("event %d: ID %s not after %s", i, e.ID, evs[i-1].ID)
				}
				if !strings.HasPrefix(e.Text, "k") {
					t.Fatalf("event %d: text %q", i, e.Text)
				}
				have[e.ID] = true
			}
			for _, id := range acked {
				if !have[id] {
					t.Fatalf("acknowledged event %s lost (%d events kept)", id, len(evs))
				}
			}
			t.Logf("%d batches acknowledged, %d events kept, %d bytes cut", len(acked), len(evs), s.Info().CutBytes)
		})
	}
}

// appendStatusUntilKilled appends status records, one to three a call,
// and prints the Seq and component of the last of each call once
// AppendStatus returned: what the store acknowledged.
func appendStatusUntilKilled(v string) {
	dir, policy, _ := strings.Cut(v, ",")
	s, err := Open(Config{Dir: dir, Sync: SyncPolicy(policy), Logger: quiet()})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	pid := strconv.Itoa(os.Getpid())
	for i := 0; ; i++ {
		recs := storetest.StatusRecords("k"+pid+"-"+strconv.Itoa(i), 1+i%3)
		if err := s.AppendStatus(bg, recs); err != nil {
			fmt.Fprintln(w, "append:", err)
			w.Flush()
			os.Exit(1)
		}
		last := recs[len(recs)-1]
		fmt.Fprintln(w, last.Seq, last.Component)
		w.Flush()
	}
}

// TestKillDuringStatusAppends SIGKILLs a process appending status records
// as fast as it can, three times on the same directory: every record it
// acknowledged is there after each restart, under the Seq it was given,
// the Seqs run from 1 without a gap, and the status journal still opens.
func TestKillDuringStatusAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes: not in -short")
	}
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways, SyncOS} {
		t.Run(string(p), func(t *testing.T) {
			dir := t.TempDir()
			acked := map[uint64]string{}
			var cut int64
			for round := 0; round < 3; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), killStatusEnv+"="+dir+","+string(p))
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				n := 0
				for ; n < 300 && sc.Scan(); n++ {
					var seq uint64
					var comp string
					if _, err := fmt.Sscan(sc.Text(), &seq, &comp); err != nil {
						t.Fatalf("child: %s", sc.Text())
					}
					acked[seq] = comp
				}
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if n == 0 {
					t.Fatal("the child acknowledged nothing")
				}
				// Each round starts on what the one before left.
				s := open(t, Config{Dir: dir, Sync: p})
				cut += s.Info().StatusCutBytes
				s.Close()
			}
			s := open(t, Config{Dir: dir, Sync: p})
			defer s.Close()
			recs := allStatus(t, s)
			byseq := make(map[uint64]string, len(recs))
			for i, r := range recs {
				if r.Seq != uint64(i+1) {
					t.Fatalf("record %d has Seq %d", i, r.Seq)
				}
				byseq[r.Seq] = r.Component
			}
			for seq, comp := range acked {
				if byseq[seq] != comp {
					t.Fatalf("acknowledged record %d (%s) is %q after the kills (%d records kept)", seq, comp, byseq[seq], len(recs))
				}
			}
			t.Logf("%d calls acknowledged, %d records kept, %d bytes cut", len(acked), len(recs), cut)
		})
	}
}
