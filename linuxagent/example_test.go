package linuxagent_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zbridge/zbridge/linuxagent"
)

func ExampleSplitCommand() {
	argv, err := linuxagent.SplitCommand(`grep -c 'Failed password' "/var/log/auth.log"`)
	fmt.Printf("%q %v\n", argv, err)

	_, err = linuxagent.SplitCommand("grep -c Failed /var/log/*.log")
	fmt.Println(errors.Is(err, linuxagent.ErrShellSyntax), err)
	// Output:
	// ["grep" "-c" "Failed password" "/var/log/auth.log"] <nil>
	// true shell syntax at offset 24: unquoted "*" (pathname expansion)
}

func ExampleQuoteCommand() {
	fmt.Println(linuxagent.QuoteCommand("systemctl", "status", "my service", "it's"))
	// Output: systemctl status 'my service' 'it'\''s'
}

func ExampleParsePolicy() {
	p, err := linuxagent.ParsePolicy(strings.NewReader(`
# diagnostics only
timeout 30s
allow uname -a
allow systemctl status *
deny *
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, cmd := range []string{"uname -a", "systemctl status sshd", "reboot"} {
		action, rule := p.Decide(cmd)
		fmt.Printf("%-21s %s (line %d)\n", cmd, action, rule.Line)
	}
	_, err = linuxagent.ParsePolicy(strings.NewReader("allow ls\ntimeout soon\n"))
	fmt.Println(err)
	// Output:
	// uname -a              allow (line 4)
	// systemctl status sshd allow (line 5)
	// reboot                deny (line 6)
	// linuxagent: policy line 2: timeout "soon": want a positive duration such as 30s, 10m or 1h30m
}
