package cimd_test

import (
	"errors"
	"fmt"

	"github.com/mcpauth/mcpauth/cimd"
)

func ExampleParseClientID() {
	id, err := cimd.ParseClientID("https://app.example:8443/oauth/client.json")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Host(), id.Port())
	for _, w := range cimd.ClientIDWarnings(id) {
		fmt.Println("warning:", w.Code)
	}

	_, err = cimd.ParseClientID("https://app.example")
	var e *cimd.Error
	if errors.As(err, &e) {
		fmt.Printf("%s (%s)\n", e.Reason, e.Ref)
		fmt.Println(e.Message)
	}
	// Output:
	// app.example 8443
	// warning: non_default_port
	// client_id_no_path (draft-ietf-oauth-client-id-metadata-document-02 §3)
	// client_id must have a path, e.g. https://app.example/client.json
}
