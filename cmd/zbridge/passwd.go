package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zbridge/zbridge/gateway/auth"
)

// runPasswd prints a clients-file line for NAME, reading the secret from
// the first line of standard input so it never appears in argv or history.
func runPasswd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zbridge passwd NAME < secret-file   (prints NAME:HASH for the clients file)")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "zbridge passwd:", err)
		return 1
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		fmt.Fprintln(stderr, "zbridge passwd: empty secret on standard input")
		return 1
	}
	h, err := auth.Hash(secret)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s:%s\n", fs.Arg(0), h)
	return 0
}
