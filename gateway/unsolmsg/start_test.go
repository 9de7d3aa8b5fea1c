package unsolmsg

import (
	"errors"
	"testing"

	"github.com/zbridge/zbridge/protocol"
)

// TestSubscriptionStart covers every subscribe: plain, durable (position
// recorded or not) and group, × after none, "0", an ID and malformed, ×
// an empty store and one with events. Each row says whether the store's
// newest is read (Request's Stats call), where the subscription starts,
// whether the start is recorded, what an ack may name, and the error. The
// rows marked "bug" are the two resume bugs fixed before this table.
func TestSubscriptionStart(t *testing.T) {
	var (
		zero  = protocol.ID{}
		first = protocol.ID{Seq: 1}                    // 0-1: before every ID a store assigns
		last  = protocol.ID{Ms: 1700000000000, Seq: 7} // the newest of a store with events
		asked = protocol.ID{Ms: 1700000000000, Seq: 3} // the after a client sends
		pos   = protocol.ID{Ms: 1700000000000, Seq: 5} // a durable's recorded position
	)
	const (
		askedText = "1700000000000-3"
		malformed = "1700000000000-x"
		futureTxt = "1700000000000-8" // after the newest of a store with events
	)
	tests := []struct {
		name      string
		kind      startKind
		resumed   bool
		position  protocol.ID
		after     string
		storeLast protocol.ID // the store's newest (zero: empty store)

		wantNewest bool // the store's newest is read
		wantAfter  protocol.ID
		wantRecord bool
		wantKnown  protocol.ID
		wantErr    bool
		wantErrIs  error // with wantErr: protocol.ErrBadID if nil
	}{
		// Plain: after as asked; none is new events only. The newest is
		// read only for that.
		{name: "plain/no after/store empty", kind: startPlain, storeLast: zero,
			wantNewest: true, wantAfter: zero, wantKnown: zero},
		{name: "plain/no after/store with events: after the newest", kind: startPlain, storeLast: last,
			wantNewest: true, wantAfter: last, wantKnown: last},
		{name: "plain/after 0/store empty", kind: startPlain, after: "0", storeLast: zero,
			wantAfter: zero},
		{name: "plain/after 0/store with events: every retained event", kind: startPlain, after: "0", storeLast: last,
			wantAfter: zero},
		{name: "plain/after ID/store empty", kind: startPlain, after: askedText, storeLast: zero,
			wantAfter: asked},
		{name: "plain/after ID/store with events", kind: startPlain, after: askedText, storeLast: last,
			wantAfter: asked},
		{name: "plain/after malformed/store empty", kind: startPlain, after: malformed, storeLast: zero,
			wantErr: true},
		{name: "plain/after malformed/store with events", kind: startPlain, after: malformed, storeLast: last,
			wantErr: true},
		{name: "plain/after an ID later than the newest: as asked (nothing is kept)", kind: startPlain, after: futureTxt, storeLast: last,
			wantAfter: protocol.ID{Ms: 1700000000000, Seq: 8}},

		// Durable, first named: starts as a plain one would, and the
		// start is recorded.
		{name: "durable/new/no after/store empty: records 0-0", kind: startDurable, storeLast: zero,
			wantNewest: true, wantAfter: zero, wantRecord: true, wantKnown: zero},
		{name: "durable/new/no after/store with events: records the newest", kind: startDurable, storeLast: last,
			wantNewest: true, wantAfter: last, wantRecord: true, wantKnown: last},
		{name: "durable/new/after 0/store empty", kind: startDurable, after: "0", storeLast: zero,
			wantNewest: true, wantAfter: zero, wantRecord: true, wantKnown: zero},
		{name: "durable/new/after 0/store with events", kind: startDurable, after: "0", storeLast: last,
			wantNewest: true, wantAfter: zero, wantRecord: true, wantKnown: last},
		{name: "durable/new/after ID/store empty: later than the newest, refused", kind: startDurable, after: askedText, storeLast: zero,
			wantNewest: true, wantErr: true, wantErrIs: errAfterNewest},
		{name: "durable/new/after ID/store with events", kind: startDurable, after: askedText, storeLast: last,
			wantNewest: true, wantAfter: asked, wantRecord: true, wantKnown: last},
		{name: "durable/new/after malformed/store empty", kind: startDurable, after: malformed, storeLast: zero,
			wantErr: true},
		{name: "durable/new/after malformed/store with events", kind: startDurable, after: malformed, storeLast: last,
			wantErr: true},
		{name: "durable/new/after the newest", kind: startDurable, after: "1700000000000-7", storeLast: last,
			wantNewest: true, wantAfter: last, wantRecord: true, wantKnown: last},
		{name: "durable/new/after an ID later than the newest: refused", kind: startDurable, after: futureTxt, storeLast: last,
			wantNewest: true, wantErr: true, wantErrIs: errAfterNewest},
		{name: "durable/resumed/after an ID later than the newest: ignored", kind: startDurable, resumed: true, position: pos, after: futureTxt, storeLast: last,
			wantNewest: true, wantAfter: pos, wantKnown: last},

		// Durable, resumed: after its position, whatever after says (a
		// malformed one too: it is not used); nothing recorded. A
		// subscription first named on an empty store was recorded at 0-0.
		{name: "durable/resumed/no after/store empty: after its 0-0", kind: startDurable, resumed: true, position: zero, storeLast: zero,
			wantNewest: true, wantAfter: zero, wantKnown: zero},
		{name: "durable/resumed/no after/store with events: after its position", kind: startDurable, resumed: true, position: pos, storeLast: last,
			wantNewest: true, wantAfter: pos, wantKnown: last},
		{name: "durable/resumed/after 0/store empty: after 0 ignored", kind: startDurable, resumed: true, position: zero, after: "0", storeLast: zero,
			wantNewest: true, wantAfter: zero, wantKnown: zero},
		{name: "durable/resumed/after 0/store with events: after 0 ignored", kind: startDurable, resumed: true, position: pos, after: "0", storeLast: last,
			wantNewest: true, wantAfter: pos, wantKnown: last},
		{name: "durable/resumed/after ID/store empty: after ignored", kind: startDurable, resumed: true, position: zero, after: askedText, storeLast: zero,
			wantNewest: true, wantAfter: zero, wantKnown: zero},
		{name: "durable/resumed/after ID/store with events: after ignored", kind: startDurable, resumed: true, position: pos, after: askedText, storeLast: last,
			wantNewest: true, wantAfter: pos, wantKnown: last},
		{name: "durable/resumed/after malformed/store empty: not parsed", kind: startDurable, resumed: true, position: zero, after: malformed, storeLast: zero,
			wantNewest: true, wantAfter: zero, wantKnown: zero},
		{name: "durable/resumed/after malformed/store with events: not parsed", kind: startDurable, resumed: true, position: pos, after: malformed, storeLast: last,
			wantNewest: true, wantAfter: pos, wantKnown: last},

		// Group: the start of a group not yet in the store, never zero
		// (to the store, zero is "the newest when first read").
		{name: "group/no after/store empty: 0-1, not the newest at first read (bug)", kind: startGroup, storeLast: zero,
			wantNewest: true, wantAfter: first, wantKnown: zero},
		{name: "group/no after/store with events: after the newest", kind: startGroup, storeLast: last,
			wantNewest: true, wantAfter: last, wantKnown: last},
		{name: "group/after 0/store empty: 0-1", kind: startGroup, after: "0", storeLast: zero,
			wantNewest: true, wantAfter: first, wantKnown: zero},
		{name: "group/after 0/store with events: 0-1, every retained event, not the newest (bug)", kind: startGroup, after: "0", storeLast: last,
			wantNewest: true, wantAfter: first, wantKnown: last},
		{name: "group/after 0-0/store with events: as after 0", kind: startGroup, after: "0-0", storeLast: last,
			wantNewest: true, wantAfter: first, wantKnown: last},
		{name: "group/after ID/store empty: later than the newest, refused", kind: startGroup, after: askedText, storeLast: zero,
			wantNewest: true, wantErr: true, wantErrIs: errAfterNewest},
		{name: "group/after ID/store with events", kind: startGroup, after: askedText, storeLast: last,
			wantNewest: true, wantAfter: asked, wantKnown: last},
		{name: "group/after malformed/store empty", kind: startGroup, after: malformed, storeLast: zero,
			wantErr: true},
		{name: "group/after malformed/store with events", kind: startGroup, after: malformed, storeLast: last,
			wantErr: true},
		{name: "group/after the newest", kind: startGroup, after: "1700000000000-7", storeLast: last,
			wantNewest: true, wantAfter: last, wantKnown: last},
		{name: "group/after an ID later than the newest: refused (it would wedge the group)", kind: startGroup, after: futureTxt, storeLast: last,
			wantNewest: true, wantErr: true, wantErrIs: errAfterNewest},
		{name: "group/after far in the future: refused", kind: startGroup, after: "99999999999999-0", storeLast: last,
			wantNewest: true, wantErr: true, wantErrIs: errAfterNewest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As Request does: the position, then the newest if needed.
			in := startInput{kind: tt.kind, after: tt.after, position: tt.position, resumed: tt.resumed}
			need, err := startNeedsNewest(in)
			if need != tt.wantNewest {
				t.Errorf("startNeedsNewest = %v, want %v", need, tt.wantNewest)
			}
			wantErrIs := tt.wantErrIs
			if wantErrIs == nil {
				wantErrIs = protocol.ErrBadID
			}
			// startNeedsNewest answers only the errors found without the
			// store: a malformed after.
			if early := tt.wantErr && wantErrIs == protocol.ErrBadID; early != (err != nil) || err != nil && !errors.Is(err, protocol.ErrBadID) {
				t.Fatalf("startNeedsNewest error %v, want error %v (protocol.ErrBadID)", err, early)
			}
			if err != nil {
				return
			}
			if need {
				in.newest = tt.storeLast
			}
			got, err := subscriptionStart(in)
			if tt.wantErr {
				if !errors.Is(err, wantErrIs) {
					t.Fatalf("subscriptionStart error %v, want %v", err, wantErrIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("subscriptionStart: %v", err)
			}
			want := startPoint{after: tt.wantAfter, record: tt.wantRecord, known: tt.wantKnown}
			if got != want {
				t.Errorf("subscriptionStart = %+v, want %+v", got, want)
			}
		})
	}
}
