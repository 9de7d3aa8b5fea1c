package agentproto_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

func ExampleParseResultPayload() {
	// What a region reads from a zbridge-result@zbridge channel request.
	payload := agentproto.MarshalResultPayload(&agentproto.Result{
		CommandID: "c-42", ExitStatus: -1, Signal: "TERM", TimedOut: true,
		Message: "timed out after 30s; the command's process group was terminated",
	})
	r, err := agentproto.ParseResultPayload(payload)
	fmt.Println(r.CommandID, r.Signal, r.TimedOut, err)
	// Output: c-42 TERM true <nil>
}

func ExampleCheckCommand() {
	err := agentproto.CheckCommand(strings.Repeat("x", 300<<10))
	fmt.Println(errors.Is(err, agentproto.ErrTooLong))
	fmt.Println(err)
	// Output:
	// true
	// command is 307200 bytes; the most a Linux agent takes is 65152
}
