package cluster

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
)

// asStored turns XADD values into what XREAD returns: a map of strings.
func asStored(v []string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(v); i += 2 {
		m[v[i]] = v[i+1]
	}
	return m
}

func TestWireRoundTrip(t *testing.T) {
	run := runMsg{FID: "B.1234.7", ID: "B-7", Target: "linux:web1", Command: "ls -l", Timeout: 90 * time.Second,
		Deadline: time.UnixMilli(1800000000123), Requester: "ops", From: "B", FromInstance: "1234",
		ToInstance: "5678", Sent: time.UnixMilli(1800000000001)}
	e, err := decodeInbox(asStored(run.values()))
	if err != nil || e.Type != typeRun || e.FID != run.FID || e.Run != run || e.from() != "B" || !e.sent().Equal(run.Sent) {
		t.Errorf("run: %+v, %v; want %+v", e, err, run)
	}
	cancel := cancelMsg{FID: "B.1234.7", From: "B", Sent: time.UnixMilli(1800000000002)}
	e, err = decodeInbox(asStored(cancel.values()))
	if err != nil || e.Type != typeCancel || e.FID != "B.1234.7" || e.Cancel != cancel || e.from() != "B" {
		t.Errorf("cancel: %+v, %v; want %+v", e, err, cancel)
	}
	for _, want := range []outEntry{
		{N: 1, Type: typeOut, Out: commands.Output{Stream: commands.Stdout, Data: []byte("line"), EOL: true}},
		{N: 2, Type: typeOut, Out: commands.Output{Stream: commands.Stderr, Data: []byte{0, 0xff, '\n'}}},
		{N: 3, Type: typeResult, Res: commands.Result{RC: 137, Signal: "KILL", Truncated: true, Duration: 1500 * time.Millisecond}},
		{N: 4, Type: typeError, Err: &commands.Error{Code: commands.CodeBusy, Message: "busy now", RetryAfter: 3},
			Res: commands.Result{RC: -1}},
	} {
		got, err := decodeOut(asStored(want.values()))
		if err != nil || !outEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", want.Type, got, err, want)
		}
	}
}

func TestWireErrors(t *testing.T) {
	for name, v := range map[string]map[string]any{
		"no fid":        {"type": "run", "via": "B"},
		"no via":        {"type": "run", "fid": "x"},
		"cancel no via": {"type": "cancel", "fid": "x"},
		"bad sent":      {"type": "cancel", "fid": "x", "via": "B", "sent": "now"},
		"unknown type":  {"type": "frob", "fid": "x"},
		"bad timeout":   {"type": "run", "fid": "x", "via": "B", "timeout": "soon"},
		"not a string":  {"type": "run", "fid": "x", "via": "B", "command": 7},
	} {
		if _, err := decodeInbox(v); !errors.Is(err, ErrBadEntry) {
			t.Errorf("inbox %s: %v, want ErrBadEntry", name, err)
		}
	}
	for name, v := range map[string]map[string]any{
		"no n":          {"type": "out", "stream": "1"},
		"bad stream":    {"n": "1", "type": "out", "stream": "3"},
		"no code":       {"n": "1", "type": "error"},
		"unknown type":  {"n": "1", "type": "frob"},
		"bad rc":        {"n": "1", "type": "result", "rc": "x"},
		"negative seq":  {"n": "-1", "type": "result"},
		"seq not a num": {"n": "one", "type": "result"},
	} {
		if _, err := decodeOut(v); !errors.Is(err, ErrBadEntry) {
			t.Errorf("output %s: %v, want ErrBadEntry", name, err)
		}
	}
}

func outEqual(a, b outEntry) bool {
	if (a.Err == nil) != (b.Err == nil) || a.Err != nil && *a.Err != *b.Err {
		return false
	}
	return a.N == b.N && a.Type == b.Type && a.Out.Stream == b.Out.Stream && a.Out.EOL == b.Out.EOL &&
		bytes.Equal(a.Out.Data, b.Out.Data) && a.Res == b.Res
}

// FuzzDecodeOut checks that a decoded output entry encodes to one that
// decodes the same.
func FuzzDecodeOut(f *testing.F) {
	f.Add("1", "out", "1", "line\x00\xff", "1", "", "", "", "")
	f.Add("2", "result", "", "", "", "0", "", "", "")
	f.Add("3", "error", "", "", "", "137", "KILL", "busy", "3")
	f.Fuzz(func(t *testing.T, n, typ, stream, data, eol, rc, signal, code, retry string) {
		v := map[string]any{"n": n, "type": typ, "stream": stream, "data": data, "eol": eol, "rc": rc,
			"signal": signal, "code": code, "message": data, "retry": retry}
		e, err := decodeOut(v)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error %v, not ErrBadEntry", err)
			}
			return
		}
		again, err := decodeOut(asStored(e.values()))
		if err != nil || !outEqual(again, e) {
			t.Fatalf("%+v encodes to %+v, %v", e, again, err)
		}
	})
}
