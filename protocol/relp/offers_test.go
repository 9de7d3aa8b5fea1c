package relp

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseOffers(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Offer
		err  error
	}{
		{"librelp 1.11 open", "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog",
			[]Offer{{"relp_version", []string{"0"}}, {"relp_software", []string{"librelp", "1.11.0", "http://librelp.adiscon.com"}}, {"commands", []string{"syslog"}}}, nil},
		{"spec form with leading LF", "\nrelp_version=1\ncommands=syslog,eventlog\n",
			[]Offer{{"relp_version", []string{"1"}}, {"commands", []string{"syslog", "eventlog"}}}, nil},
		{"no values", "relp_version=\nflag", []Offer{{"relp_version", nil}, {"flag", nil}}, nil},
		{"empty values skipped", "commands=,syslog,", []Offer{{"commands", []string{"syslog"}}}, nil},
		{"empty", "", nil, nil},
		{"no name", "=1", nil, ErrBadOffer},
		{"name too long", strings.Repeat("n", 33) + "=1", nil, ErrBadOffer},
		{"value too long", "x=" + strings.Repeat("v", 256), nil, ErrBadOffer},
		{"too many values", "x=" + strings.Repeat("v,", 65), nil, ErrBadOffer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOffers([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b Offer) bool {
				return a.Name == b.Name && slices.Equal(a.Values, b.Values)
			}) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAppendResponseLikeImrelp builds imrelp's answer to open from its
// parts and gets the recorded bytes.
func TestAppendResponseLikeImrelp(t *testing.T) {
	recorded := captures(t)["imrelp-session.s2c"]
	offers := []Offer{
		{OfferVersion, []string{"0"}},
		{OfferSoftware, []string{"librelp", "1.11.0", "http://librelp.adiscon.com"}},
		{OfferCommands, []string{"syslog"}},
	}
	got := AppendResponse(nil, 1, StatusOK, "OK", AppendOffers(nil, offers))
	got = AppendResponse(got, 2, StatusOK, "OK", nil)
	if !bytes.HasPrefix(recorded, got) {
		t.Fatalf("got\n%q\nrecorded\n%q", got, recorded[:len(got)])
	}
}

func TestResponse(t *testing.T) {
	b := AppendResponse(nil, 5, StatusError, "sink down\r\nretry", nil)
	if want := "5 rsp 20 500 sink down  retry\n"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	long := AppendResponse(nil, 1, 500, strings.Repeat("x", 200), nil)
	f, err := NewReader(bufioOf(long), 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseResponse(f.Data)
	if err != nil || r.Code != 500 || len(r.Text) != MaxResponseText || r.Body != nil {
		t.Fatalf("%+v, %v", r, err)
	}
	for _, bad := range []string{"", "200", "200\nOK", "20 OK", "2x0 OK", "OK 200"} {
		if _, err := ParseResponse([]byte(bad)); !errors.Is(err, ErrBadResponse) {
			t.Errorf("ParseResponse(%q): %v", bad, err)
		}
	}
	r, err = ParseResponse([]byte("200 OK\nrelp_version=1"))
	if err != nil || r.Code != 200 || r.Text != "OK" || string(r.Body) != "relp_version=1" {
		t.Errorf("%+v, %v", r, err)
	}
	if got := string(AppendServerClose(nil, "")); got != "0 serverclose 0\n" {
		t.Errorf("serverclose %q", got)
	}
	if got := string(AppendServerClose(nil, "shutting down")); got != "0 serverclose 13 shutting down\n" {
		t.Errorf("serverclose %q", got)
	}
}
