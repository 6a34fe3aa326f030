package graph

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// getTransport is gqlgen's GET transport (transport.GET) answering as the
// GraphQL-over-HTTP specification says, with a code on every error: an
// operation other than a query is 405 with Allow: POST (gqlgen: 406 and no
// code), and a query string, variables or extensions that do not decode
// are 400 BAD_REQUEST (gqlgen: no code). It also takes a GET with an
// Upgrade header other than websocket (a client's h2c offer), which
// gqlgen would leave to its WebSocket transport.
type getTransport struct{}

var _ graphql.Transport = getTransport{}

func (getTransport) Supports(r *http.Request) bool { return r.Method == http.MethodGet }

func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(w, http.StatusBadRequest, badRequest("the query string does not decode"))
		return
	}
	raw := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName"), Headers: r.Header}
	raw.ReadTime.Start = graphql.Now()
	for name, into := range map[string]*map[string]any{"variables": &raw.Variables, "extensions": &raw.Extensions} {
		if s := q.Get(name); s != "" && decodeJSON(s, into) != nil {
			refuse(w, http.StatusBadRequest, badRequest(name+" must be a JSON object"))
			return
		}
	}
	raw.ReadTime.End = graphql.Now()

	ctx := r.Context()
	oc, errs := exec.CreateOperationContext(ctx, raw)
	if errs == nil && oc.Operation.Operation != ast.Query {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, badRequest("GET is for queries only: send a mutation with POST"))
		return
	}
	graphQLResponse := acceptsGraphQLResponse(r)
	if graphQLResponse {
		w.Header().Set("Content-Type", "application/graphql-response+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	if errs != nil {
		// As transport.GET and transport.POST answer: a request that does
		// not parse or validate is 400 to a client that speaks
		// application/graphql-response+json, 422 to others.
		switch {
		case errcode.GetErrorKind(errs) != errcode.KindProtocol:
			w.WriteHeader(http.StatusOK)
		case graphQLResponse:
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// decodeJSON decodes s into v keeping numbers exact, as gqlgen does.
func decodeJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec.Decode(v)
}

// acceptsGraphQLResponse reports whether the answer is to be
// application/graphql-response+json rather than application/json, chosen
// from Accept as gqlgen's transports choose it: the first of the two, or
// of */* and application/* (application/json), that Accept lists; when it
// lists none of them, graphql-response; without Accept, application/json.
func acceptsGraphQLResponse(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return false
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "application/*", "*/*":
			return false
		case "application/graphql-response+json":
			return true
		}
	}
	return true
}

func writeResponse(w http.ResponseWriter, resp *graphql.Response) {
	body, _ := json.Marshal(resp)
	_, _ = w.Write(body)
}

// postTransport is gqlgen's POST transport, taking requests with an Upgrade
// header too (a client trying h2c, say), which gqlgen leaves to a
// WebSocket transport that gatehouse has not. checkMethod has made sure
// the body is JSON.
type postTransport struct{ transport.POST }

func (postTransport) Supports(r *http.Request) bool { return r.Method == http.MethodPost }

// routed answers a request no route takes in the API's error format, where
// http.ServeMux answers in plain text: 405 with Allow for a method the path
// does not serve (every path but /query serves only GET and HEAD), 404 for
// any other.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		if _, pattern := mux.Handler(get); pattern != "" {
			w.Header().Set("Allow", "GET, HEAD")
			refuse(w, http.StatusMethodNotAllowed, badRequest("this path serves GET only"))
			return
		}
		refuse(w, http.StatusNotFound, badRequest("no such path: the API is at /query"))
	})
}
