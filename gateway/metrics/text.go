package metrics

import (
	"math"
	"strconv"
)

// ContentType is the media type of the text format 0.0.4, which
// [Registry.Handler] serves.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// appendFamily appends d's HELP and TYPE lines and its samples, one line
// each, in the text format 0.0.4, to b. ss are d's series, sorted.
func appendFamily(b []byte, d *desc, ss []series) []byte {
	b = append(b, "# HELP "...)
	b = append(b, d.name...)
	b = append(b, ' ')
	b = appendEscaped(b, d.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, d.name...)
	b = append(b, ' ')
	b = append(b, d.kind.String()...)
	b = append(b, '\n')
	for i := range ss {
		s := &ss[i]
		switch d.kind {
		case kindHistogram:
			for j, ub := range d.bounds {
				b = appendSampleName(b, d.name, "_bucket", d.labelNames, s.labelValues, "le", ub)
				b = strconv.AppendUint(b, s.buckets[j], 10)
				b = append(b, '\n')
			}
			b = appendSampleName(b, d.name, "_bucket", d.labelNames, s.labelValues, "le", math.Inf(1))
			b = strconv.AppendUint(b, s.count, 10)
			b = append(b, '\n')
			b = appendSumCount(b, d, s)
		case kindSummary:
			for j, q := range d.bounds {
				b = appendSampleName(b, d.name, "", d.labelNames, s.labelValues, "quantile", q)
				b = appendFloat(b, s.quantiles[j])
				b = append(b, '\n')
			}
			b = appendSumCount(b, d, s)
		default:
			b = appendSampleName(b, d.name, "", d.labelNames, s.labelValues, "", 0)
			b = appendFloat(b, s.value)
			b = append(b, '\n')
		}
	}
	return b
}

// appendSumCount appends a histogram's or summary's _sum and _count lines.
func appendSumCount(b []byte, d *desc, s *series) []byte {
	b = appendSampleName(b, d.name, "_sum", d.labelNames, s.labelValues, "", 0)
	b = appendFloat(b, s.sum)
	b = append(b, '\n')
	b = appendSampleName(b, d.name, "_count", d.labelNames, s.labelValues, "", 0)
	b = strconv.AppendUint(b, s.count, 10)
	return append(b, '\n')
}

// appendSampleName appends a sample's name with suffix, its labels and the
// space before its value; extra, when not "", is one more label, last,
// with the value at (le for a bucket, quantile for a summary).
func appendSampleName(b []byte, name, suffix string, names, values []string, extra string, at float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(names) > 0 || extra != "" {
		b = append(b, '{')
		b = appendLabelPairs(b, names, values)
		if extra != "" {
			if len(names) > 0 {
				b = append(b, ',')
			}
			b = append(b, extra...)
			b = append(b, `="`...)
			b = appendFloat(b, at)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendLabels appends {name="value",…} for names and values, or nothing
// when there are none.
func appendLabels(b []byte, names, values []string) []byte {
	if len(names) == 0 {
		return b
	}
	b = append(b, '{')
	b = appendLabelPairs(b, names, values)
	return append(b, '}')
}

// appendLabelPairs appends name="value" for names and values, separated by
// commas, each value escaped as the format requires, in the order of the
// names (as Prometheus's own client writes them, so that a sample reads
// the same whatever order its family declared them in).
func appendLabelPairs(b []byte, names, values []string) []byte {
	var done uint64 // the pairs written, for up to 64 names; more are written as declared
	for k := range names {
		j := k
		if len(names) <= 64 {
			j = -1
			for i, n := range names {
				if done&(1<<i) == 0 && (j < 0 || n < names[j]) {
					j = i
				}
			}
			done |= 1 << j
		}
		if k > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, names[j], values[j])
	}
	return b
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped appends s with backslash and line feed escaped as \\ and
// \n, and, in a label value (quoted), the double quote as \".
func appendEscaped(b []byte, s string, quoted bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quoted:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends f as the text format writes a value: NaN, +Inf,
// -Inf, or Go's shortest representation that reads back as f ('g', so 1e+06
// and 0.0001 rather than 1000000.0 and 1e-04), as Prometheus's own clients
// write it.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
