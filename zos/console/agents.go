package console

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/zos"
)

const agentsLegend = "PF3=RETURN PF5=RETURN PF7=UP PF8=DOWN ENTER=REFRESH"

// agents runs the agents panel until PF3 or PF5 returns to the log. The
// updater writes nothing meanwhile.
func (ss *session) agents() error {
	ss.drawMu.Lock()
	ss.mode, ss.drawn = modeOther, nil
	ss.drawMu.Unlock()
	list, msg, st := ss.fetchAgents()
	page := ss.t.rows - 5
	top := 0
	for {
		if !ss.armRead() {
			return errEnded
		}
		resp, err := ss.t.show(ss.agentsScreen(list, msg, st, top), nil, ss.t.rows-1, 0)
		if err != nil {
			return err
		}
		switch resp.AID {
		case go3270.AIDPF3, go3270.AIDPF5:
			return nil
		case go3270.AIDEnter:
			list, msg, st = ss.fetchAgents()
			top = min(top, max(0, len(list)-page))
		case go3270.AIDPF7:
			top = max(0, top-page)
		case go3270.AIDPF8:
			if top+page < len(list) {
				top += page
			}
		}
	}
}

// fetchAgents asks the Operator for the agents; a refusal is the message.
func (ss *session) fetchAgents() ([]Agent, string, style) {
	ctx, cancel := context.WithTimeout(ss.ctx, agentsTimeout)
	defer cancel()
	list, err := ss.op.Agents(ctx)
	if err != nil {
		return nil, zos.Must("ZBR311E").Format(err.Error()), errorStyle
	}
	return list, fmt.Sprintf("AGENTS: %d", len(list)), infoStyle
}

// agentsScreen is the agents panel with the list from line top.
func (ss *session) agentsScreen(list []Agent, msg string, st style, top int) go3270.Screen {
	t := ss.t
	now := time.Now()
	w := agentColumns(t.cols - 1)
	scr := go3270.Screen{
		t.row(0, withClock(t.cs, titleText(ss.srv.cfg.Backend.Name(), "AGENTS"), now, t.width(0)), style{color: go3270.White}),
		t.row(1, msg, st),
		t.row(2, agentRow(t.cs, w, "NAME", "KIND", "STATE", "ADDRESS", "SINCE", "LAST-HB", "REGION"),
			style{color: go3270.White, hl: go3270.Underscore}),
	}
	page := t.rows - 5
	for i := range page {
		text := ""
		if n := top + i; n < len(list) {
			a := list[n]
			text = agentRow(t.cs, w, a.Name, a.Kind, a.State, a.Addr, since(a.Since), age(now, a.LastHeartbeat), a.Region)
		}
		scr = append(scr, t.row(3+i, text, style{color: go3270.Green}))
	}
	pos := ""
	if len(list) > page {
		pos = fmt.Sprintf("LINES %d-%d OF %d", top+1, min(top+page, len(list)), len(list))
	}
	return append(scr,
		t.row(t.rows-2, pos, style{color: go3270.Turquoise}),
		t.row(t.rows-1, agentsLegend, style{color: go3270.Blue}))
}

// agentColumns fits the agents table's seven columns to width cells
// (blank-separated): each has a least width, and what is left goes to the
// name, address, region and state, which vary most.
func agentColumns(width int) [7]int {
	w := [7]int{10, 5, 9, 21, 11, 7, 6} // NAME KIND STATE ADDRESS SINCE LAST-HB REGION
	used := len(w) - 1
	for _, n := range w {
		used += n
	}
	if extra := width - used; extra > 0 {
		w[0] += extra * 30 / 100
		w[3] += extra * 35 / 100
		w[2] += extra * 15 / 100
		w[6] += extra - extra*30/100 - extra*35/100 - extra*15/100
	}
	return w
}

// agentRow lays out one row of the table: each cell clean and cut to its
// column.
func agentRow(cs *charset, w [7]int, cells ...string) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fit(cs.clean(c), w[i]))
	}
	return b.String()
}

// since is when an agent connected: month, day and time, UTC.
func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("01-02 15:04")
}

// age is how long ago the last heartbeat was: 12s, 5m, 3h, 2d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}
