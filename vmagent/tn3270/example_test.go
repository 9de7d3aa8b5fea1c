package tn3270_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/racingmars/go3270"
	"github.com/zbridge/zbridge/vmagent/tn3270"
)

// A go3270 application asks for a userid; the client fills it in and
// presses ENTER.
func ExampleDial() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan go3270.Response, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		dev, err := go3270.NegotiateTelnet(conn)
		if err != nil {
			return
		}
		resp, _ := go3270.ShowScreenOpts(go3270.Screen{
			{Row: 0, Col: 0, Content: "EXAMPLE LOGON", Intense: true},
			{Row: 2, Col: 0, Content: "Userid:"},
			{Row: 2, Col: 8, Name: "user", Write: true},
			{Row: 2, Col: 17, Autoskip: true},
		}, nil, conn, go3270.ScreenOpts{Codepage: dev.Codepage(), CursorRow: 2, CursorCol: 9})
		got <- resp
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tn3270.Dial(ctx, ln.Addr().String(), tn3270.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Wait for a screen with an input field and the keyboard unlocked.
	s, err := c.WaitFor(ctx, func(s tn3270.Screen) bool {
		return s.Formatted() && !s.KeyboardLocked
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range s.Rows()[:3] {
		fmt.Printf("%q\n", strings.TrimRight(row, " "))
	}
	if err := c.Type("OPERATOR"); err != nil {
		log.Fatal(err)
	}
	if err := c.SendAID(ctx, go3270.AIDEnter); err != nil {
		log.Fatal(err)
	}
	resp := <-got
	fmt.Println(go3270.AIDtoString(resp.AID), resp.Values["user"])
	// Output:
	// " EXAMPLE LOGON"
	// ""
	// " Userid:"
	// Enter OPERATOR
}
