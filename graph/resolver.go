// Package graph is gatehouse's GraphQL layer: the gqlgen-generated
// executable schema, thin resolvers over the auth service, and the HTTP
// handler that serves them.
package graph

import "gatehouse/auth"

// Resolver holds the long-lived dependencies of every resolver. Per-request
// state (the caller) travels in the context, never here.
type Resolver struct {
	auth *auth.Service
}
