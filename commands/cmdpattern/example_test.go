package cmdpattern_test

import (
	"fmt"

	"github.com/zbridge/zbridge/commands/cmdpattern"
)

func ExampleCompile() {
	logs := cmdpattern.MustCompile("cat /var/log/*", cmdpattern.Options{})
	status := cmdpattern.MustCompile("systemctl status **", cmdpattern.Options{})
	for _, line := range []string{
		"cat /var/log/syslog",
		"cat /var/log/../../etc/shadow",
		"cat /var/log/syslog /etc/shadow",
		"systemctl status",
		"systemctl status sshd --no-pager",
	} {
		words, err := cmdpattern.Split(line)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-32s %v\n", line, logs.Match(words) || status.Match(words))
	}
	// Output:
	// cat /var/log/syslog              true
	// cat /var/log/../../etc/shadow    false
	// cat /var/log/syslog /etc/shadow  false
	// systemctl status                 true
	// systemctl status sshd --no-pager true
}

func ExampleOptions() {
	// CP commands are case-insensitive.
	q := cmdpattern.MustCompile("QUERY NAMES", cmdpattern.Options{Fold: true})
	fmt.Println(q.Match(cmdpattern.Fields("query names")))
	// A deny pattern may take abbreviations too.
	deny := cmdpattern.MustCompile("SET PRIVCLASS **", cmdpattern.Options{Fold: true, Abbrev: true})
	fmt.Println(deny.Match(cmdpattern.Fields("set priv linux01 +A")))
	// Output:
	// true
	// true
}

func ExampleSplit() {
	argv, err := cmdpattern.Split(`grep -c 'Failed password' "/var/log/auth.log"`)
	fmt.Printf("%q %v\n", argv, err)
	_, err = cmdpattern.Split("grep -c Failed /var/log/*.log")
	fmt.Println(err)
	// Output:
	// ["grep" "-c" "Failed password" "/var/log/auth.log"] <nil>
	// cmdpattern: shell syntax at offset 24: unquoted "*" (pathname expansion)
}
