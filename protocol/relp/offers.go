package relp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The offers of RELP version 1 (SPEC.md, "Session").
const (
	OfferVersion  = "relp_version"  // the protocol version: one integer
	OfferSoftware = "relp_software" // name, version, URL of the implementation
	OfferCommands = "commands"      // the optional commands supported: syslog
)

// Limits of an offer, librelp's (offers.h): a longer name or value, or
// more values, is ErrBadOffer.
const (
	MaxOfferName   = 32
	MaxOfferValue  = 255
	MaxOfferValues = 64
)

// Offer is one line of the offers an open command and its response carry:
// NAME ["=" VALUE *("," VALUE)].
type Offer struct {
	Name   string
	Values []string
}

// ParseOffers parses the data of an open command (or, after the response
// line, of its response): offers separated by LF, each a name, then "="
// and values separated by ",". Empty lines and empty values are skipped,
// as librelp does. A name or value too long, too many values, or a line
// with no name is ErrBadOffer.
func ParseOffers(data []byte) ([]Offer, error) {
	var offers []Offer
	off := 0
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		lineOff := off
		off += len(line) + 1
		if len(line) == 0 {
			continue
		}
		name, rest, hasValues := bytes.Cut(line, []byte{'='})
		if len(name) == 0 {
			return nil, fmt.Errorf("%w: offer at offset %d has no name", ErrBadOffer, lineOff)
		}
		if len(name) > MaxOfferName {
			return nil, fmt.Errorf("%w: offer name at offset %d longer than %d bytes", ErrBadOffer, lineOff, MaxOfferName)
		}
		o := Offer{Name: string(name)}
		if hasValues {
			valOff := lineOff + len(name) + 1
			for v := range bytes.SplitSeq(rest, []byte{','}) {
				switch {
				case len(v) > MaxOfferValue:
					return nil, fmt.Errorf("%w: value of %s at offset %d longer than %d bytes", ErrBadOffer, o.Name, valOff, MaxOfferValue)
				case len(v) > 0:
					if len(o.Values) == MaxOfferValues {
						return nil, fmt.Errorf("%w: %s has more than %d values", ErrBadOffer, o.Name, MaxOfferValues)
					}
					o.Values = append(o.Values, string(v))
				}
				valOff += len(v) + 1
			}
		}
		offers = append(offers, o)
	}
	return offers, nil
}

// FindOffer returns the first offer named name.
func FindOffer(offers []Offer, name string) (Offer, bool) {
	for _, o := range offers {
		if o.Name == name {
			return o, true
		}
	}
	return Offer{}, false
}

// AppendOffers appends offers to dst as librelp writes them: one a line,
// "NAME=V1,V2", lines separated (not ended) by LF.
func AppendOffers(dst []byte, offers []Offer) []byte {
	for i, o := range offers {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, o.Name...)
		dst = append(dst, '=')
		for j, v := range o.Values {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
	}
	return dst
}

// Response status codes. librelp's client treats every code but 200 as an
// error.
const (
	StatusOK    = 200
	StatusError = 500
)

// MaxResponseText is the longest human-readable text of a response that
// librelp reads (the rest of the line is ignored); AppendResponse cuts
// longer text.
const MaxResponseText = 80

// Response is the data of a rsp frame: STATUS SP TEXT [LF BODY].
type Response struct {
	Code int    // three digits: 200 OK, 500 error
	Text string // human-readable, up to the first LF
	Body []byte // after the LF: the server's offers in the response to open
}

// ParseResponse parses the data of a rsp frame. Like librelp it requires
// three digits and a space; the text runs to the first LF, and what
// follows is the body.
func ParseResponse(data []byte) (Response, error) {
	if len(data) < 4 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) || data[3] != ' ' {
		return Response{}, fmt.Errorf("%w: %q does not start with a three-digit status and a space",
			ErrBadResponse, data[:min(len(data), 8)])
	}
	r := Response{Code: int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')}
	text, body, _ := bytes.Cut(data[4:], []byte{'\n'})
	r.Text = string(text)
	r.Body = body
	return r, nil
}

// AppendResponse appends a rsp frame for txnr to dst, with data "CODE SP
// TEXT", and "LF BODY" when body is not nil. LF and CR in text become
// spaces and text is cut to MaxResponseText bytes. It panics if code is not
// three digits or txnr is out of range.
func AppendResponse(dst []byte, txnr, code int, text string, body []byte) []byte {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("relp: response code %d is not three digits", code))
	}
	if len(text) > MaxResponseText {
		text = text[:MaxResponseText]
	}
	if strings.ContainsAny(text, "\r\n") {
		text = strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
	}
	n := 4 + len(text)
	if body != nil {
		n += 1 + len(body)
	}
	if txnr < 0 || txnr > MaxTxnr {
		panic(fmt.Sprintf("relp: TXNR %d out of range", txnr))
	}
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, " rsp "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	if body != nil {
		dst = append(dst, '\n')
		dst = append(dst, body...)
	}
	return append(dst, '\n')
}

// AppendServerClose appends the serverclose hint (txnr 0) to dst, with
// reason as its data when not empty. librelp's client ignores the data;
// it tells a person reading a capture why the server closed.
func AppendServerClose(dst []byte, reason string) []byte {
	return AppendFrame(dst, Frame{Txnr: 0, Command: CmdServerClose, Data: []byte(reason)})
}
