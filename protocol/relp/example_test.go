package relp_test

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/zbridge/zbridge/protocol/relp"
)

// A server's side of a session: read the client's frames, answer them.
func Example() {
	in := "1 open 30 relp_version=0\ncommands=syslog\n" +
		"2 syslog 25 <13>1 - host app - - - hi\n" +
		"3 close 0\n"
	rd := relp.NewReader(bufio.NewReader(strings.NewReader(in)), 0)
	var out []byte
	for {
		f, err := rd.ReadFrame()
		if err != nil {
			break // io.EOF here; a malformed frame wraps relp.ErrMalformed
		}
		switch f.Command {
		case relp.CmdOpen:
			offers, _ := relp.ParseOffers(f.Data)
			v, _ := relp.FindOffer(offers, relp.OfferVersion)
			out = relp.AppendResponse(out, f.Txnr, relp.StatusOK, "OK", relp.AppendOffers(nil, []relp.Offer{
				{Name: relp.OfferVersion, Values: v.Values},
				{Name: relp.OfferCommands, Values: []string{relp.CmdSyslog}},
			}))
		case relp.CmdSyslog:
			fmt.Printf("message %q\n", f.Data)
			out = relp.AppendResponse(out, f.Txnr, relp.StatusOK, "OK", nil)
		case relp.CmdClose:
			out = relp.AppendResponse(out, f.Txnr, relp.StatusOK, "OK", nil)
			out = relp.AppendServerClose(out, "")
		}
	}
	fmt.Printf("%s", out)
	// Output:
	// message "<13>1 - host app - - - hi"
	// 1 rsp 37 200 OK
	// relp_version=0
	// commands=syslog
	// 2 rsp 6 200 OK
	// 3 rsp 6 200 OK
	// 0 serverclose 0
}
