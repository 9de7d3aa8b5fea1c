package policyfile_test

import (
	"fmt"
	"strings"

	"github.com/zbridge/zbridge/commands/policyfile"
)

// An agent adds its own directive, "special", and reads the rules and the
// default from the File.
func ExampleParse() {
	special := ""
	syntax := policyfile.Syntax{
		Directives: []policyfile.Directive{{Name: "special", Set: func(value string, _ int) error {
			special = value
			return nil
		}}},
	}
	f, err := policyfile.Parse(strings.NewReader("# CP commands\nallow QUERY **\ndeny FORCE *\nspecial %\ndefault allow\n"), syntax)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v default allow %v, special %q\n", f.Rules, f.DefaultAllow, special)

	_, err = policyfile.Parse(strings.NewReader("allow QUERY **\nspecial %\nspecial $\n"), syntax)
	fmt.Println(err)
	// Output:
	// [{Allow:true Pattern:QUERY ** Line:2} {Allow:false Pattern:FORCE * Line:3}] default allow true, special "%"
	// policyfile: line 3: special given twice (first on line 2)
}
