// This file writes the gateway's own error replies: a JSON-RPC 2.0 error
// response (JSON-RPC 2.0 §5, §5.1) when the request was JSON-RPC, so that
// an MCP client shows a clear message, and plain text otherwise.

package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// JSON-RPC error codes of the gateway's replies: the predefined Invalid
// Request and Internal error (JSON-RPC 2.0 §5.1), and two from the range
// reserved for implementations, with the meanings the MCP SDKs give them
// (-32000 connection closed, -32001 request timeout; the TypeScript SDK's
// server also uses -32001 for an unknown session).
const (
	codeParseError          = -32700
	codeInvalidRequest      = -32600
	codeInternal            = -32603
	codeUpstreamUnavailable = -32000
	codeRequestTimeout      = -32001
	codeSessionNotFound     = -32001
)

// unknownID stands for a JSON-RPC request whose id cannot be known (its
// body was not read, or is not JSON): writeError answers with id null.
const unknownID = `{"jsonrpc":"2.0"}`

// rpcError is a JSON-RPC 2.0 response object carrying an error.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcErrorBody    `json:"error"`
}

type rpcErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeError answers with status and message: a JSON-RPC error response
// with the request's id when body is a JSON-RPC request, plain text
// otherwise (a GET stream, a DELETE, a body that is not JSON-RPC).
func writeError(w http.ResponseWriter, status, code int, message string, body []byte) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	id, ok := requestID(body)
	if !ok {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(message + "\n"))
		return
	}
	out, err := json.Marshal(rpcError{JSONRPC: "2.0", ID: id, Error: rpcErrorBody{Code: code, Message: message}})
	if err != nil { // cannot happen: id is valid JSON
		out = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}

// requestID reports whether body is a JSON-RPC 2.0 message or batch and
// returns the id an error response must carry: the request's id when it is
// a string or a number, else null (a notification, a batch, an id of the
// wrong type: JSON-RPC 2.0 §5 says null when the id cannot be known).
func requestID(body []byte) (json.RawMessage, bool) {
	body = bytes.TrimSpace(body)
	null := json.RawMessage("null")
	switch {
	case len(body) == 0:
		return nil, false
	case body[0] == '[':
		var batch []struct {
			JSONRPC string `json:"jsonrpc"`
		}
		if json.Unmarshal(body, &batch) != nil {
			return nil, false
		}
		for _, m := range batch {
			if m.JSONRPC == "2.0" {
				return null, true
			}
		}
		return nil, false
	case body[0] == '{':
		var m struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
		}
		if json.Unmarshal(body, &m) != nil || m.JSONRPC != "2.0" {
			return nil, false
		}
		if len(m.ID) > 0 && (m.ID[0] == '"' || m.ID[0] == '-' || '0' <= m.ID[0] && m.ID[0] <= '9') {
			return m.ID, true
		}
		return null, true
	}
	return nil, false
}
