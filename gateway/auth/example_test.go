package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zbridge/zbridge/gateway/auth"
)

func Example() {
	// An operator makes a line for the clients file.
	h, err := auth.Hash("correct horse battery staple")
	if err != nil {
		panic(err)
	}
	file := "# zbridge clients\nOPSAUTO:" + h + "\n"

	// A server loads the file (here from a string) and authenticates logons.
	clients, err := auth.Parse(strings.NewReader(file))
	if err != nil {
		panic(err)
	}
	var a auth.Authenticator = clients
	ctx := context.Background()
	fmt.Println(a.Authenticate(ctx, "OPSAUTO", "correct horse battery staple"))
	err = a.Authenticate(ctx, "OPSAUTO", "wrong")
	fmt.Println(errors.Is(err, auth.ErrBadCredentials), err)
	fmt.Println(a.Authenticate(ctx, "NOBODY", "correct horse battery staple"))
	// Output:
	// <nil>
	// true auth: bad client name or secret
	// auth: bad client name or secret
}
