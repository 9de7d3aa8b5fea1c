package protocol

import (
	"encoding/base64"
	"math"
	"strconv"
)

// appendFrameJSON appends f as a JSON object, the fields in the order and
// with the omissions of its struct tags, and reports whether it could: a
// frame with options, a filter or events is left to encoding/json (ok
// false, b as it was), and so is a timeout that is not a finite number,
// which encoding/json refuses.
//
// This is AppendFrame without reflection: in a new process encoding/json
// spends ~0.7 ms building its encoder for Frame (every field of every type
// it reaches) before the first frame, which a `zbridge cmd` pays on its
// logon, and each later frame still costs a walk of ~40 fields. The bytes
// differ from encoding/json's only where JSON allows it: '<', '>' and '&'
// are not escaped as \u003c and so on, U+0080 to U+009F are (as in event
// frames), and a timeout may be written in another form of the same number
// (1e+06). They decode to the same Frame (FuzzAppendFrame), and
// TestAppendFrameJSONFields fails when Frame gets a field this does not
// know.
func appendFrameJSON(b []byte, f *Frame) ([]byte, bool) {
	if len(f.Options) > 0 || f.Filter != nil || f.Event != nil || len(f.Events) > 0 ||
		math.IsInf(f.Timeout, 0) || math.IsNaN(f.Timeout) {
		return b, false
	}
	b = append(b, `{"type":`...)
	b = appendString(b, f.Type)
	b = appendUintField(b, `,"req":`, f.Req)
	b = appendStringField(b, `,"client":`, f.Client)
	b = appendStringField(b, `,"secret":`, string(f.Secret))
	b = appendIntField(b, `,"version":`, int64(f.Version))
	b = appendIntField(b, `,"heartbeat":`, int64(f.Heartbeat))
	b = appendStringField(b, `,"session":`, f.Session)
	if l := f.Limits; l != nil {
		b = append(b, `,"limits":{"heartbeat":`...)
		b = strconv.AppendInt(b, int64(l.Heartbeat), 10)
		b = append(b, `,"idle_timeout":`...)
		b = strconv.AppendInt(b, int64(l.IdleTimeout), 10)
		b = append(b, `,"lifetime":`...)
		b = strconv.AppendInt(b, int64(l.Lifetime), 10)
		b = append(b, `,"max_frame":`...)
		b = strconv.AppendInt(b, int64(l.MaxFrame), 10)
		b = append(b, '}')
	}
	b = appendStringField(b, `,"reason":`, f.Reason)
	b = appendStringField(b, `,"message":`, f.Message)
	b = appendIntField(b, `,"retry_after":`, int64(f.RetryAfter))
	b = appendStringField(b, `,"resume_after":`, f.ResumeAfter)
	if e := f.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, e.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		b = append(b, '}')
	}
	b = appendStringField(b, `,"after":`, f.After)
	b = appendStringField(b, `,"format":`, f.Format)
	b = appendStringField(b, `,"subscription":`, f.Subscription)
	b = appendStringField(b, `,"group":`, f.Group)
	if len(f.IDs) > 0 {
		b = append(b, `,"ids":[`...)
		for i, id := range f.IDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"id":`, f.ID)
	b = appendStringField(b, `,"line":`, f.Line)
	b = appendStringField(b, `,"target":`, f.Target)
	b = appendStringField(b, `,"command":`, f.Command)
	if f.Timeout != 0 {
		b = append(b, `,"timeout":`...)
		b = strconv.AppendFloat(b, f.Timeout, 'g', -1, 64)
	}
	b = appendStringField(b, `,"stream":`, f.Stream)
	b = appendStringField(b, `,"text":`, f.Text)
	if len(f.Data) > 0 {
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.Data)
		b = append(b, '"')
	}
	if f.EOL {
		b = append(b, `,"eol":true`...)
	}
	if f.RC != nil {
		b = append(b, `,"rc":`...)
		b = strconv.AppendInt(b, int64(*f.RC), 10)
	}
	b = appendStringField(b, `,"signal":`, f.Signal)
	if f.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	b = appendIntField(b, `,"duration_ms":`, f.DurationMS)
	b = appendUintField(b, `,"seq":`, f.Seq)
	return append(b, '}'), true
}

// appendStringField appends key and s, unless s is empty (omitempty).
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendIntField appends key and n, unless n is 0 (omitempty).
func appendIntField(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendUintField appends key and n, unless n is 0 (omitempty).
func appendUintField(b []byte, key string, n uint64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendUint(append(b, key...), n, 10)
}
