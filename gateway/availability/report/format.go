package report

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The formats of times and durations the writers share.
const (
	timeLayout = "2006-01-02 15:04:05" // UTC, to the second
	csvTime    = time.RFC3339Nano
)

// fmtTime formats t in UTC to the second.
func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// fmtDur formats d as H:MM:SS, hours unbounded, cut to the second. The
// report's durations are never negative (FuzzCompute checks).
func fmtDur(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// fmtMean formats MTTR or MTBF: "-" when there is no outage to average.
func fmtMean(c *ComponentReport, d time.Duration) string {
	if len(c.Outages) == 0 {
		return "-"
	}
	return fmtDur(d)
}

// fmtPct formats c's availability with the given decimals, truncated, not
// rounded (99.9996% is 99.999, never 100.000), computed exactly from the
// durations rather than from the float; "-" when nothing was monitored.
func fmtPct(c *ComponentReport, decimals int) string {
	if c.Monitored <= 0 {
		return "-"
	}
	scale := uint64(100)
	for range decimals {
		scale *= 10
	}
	// Up ≤ Monitored, so the quotient is at most scale and hi < Monitored.
	hi, lo := bits.Mul64(uint64(c.Up), scale)
	q, _ := bits.Div64(hi, lo, uint64(c.Monitored))
	s := strconv.FormatUint(q, 10)
	if decimals == 0 {
		return s
	}
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	return s[:len(s)-decimals] + "." + s[len(s)-decimals:]
}

// clean makes s safe to print in a text table or an XML document: control
// characters become '?', bytes that are not UTF-8 and characters XML does
// not allow become U+FFFD.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || !xmlChar(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			b.WriteByte('?')
		case r == utf8.RuneError || !xmlChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// xmlChar reports whether r is a Char of XML 1.0 (section 2.2).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// plural returns "1 outage", "2 outages".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func itoa(n int) string { return strconv.Itoa(n) }
