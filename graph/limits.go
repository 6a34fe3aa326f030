package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/graph/model"
)

// Limits bound what one GraphQL operation may ask for. The defaults let
// the playground, Apollo Client's queries and full schema introspection
// through with room to spare.
type Limits struct {
	// Depth is the deepest field nesting allowed.
	Depth int
	// Fields is the most field selections allowed, fragments expanded.
	Fields int
	// Aliases is the most aliased fields allowed.
	Aliases int
	// Complexity is gqlgen's complexity limit (one per field, lists
	// multiplied by their page size).
	Complexity int
	// Tokens is the parser's token limit.
	Tokens int
}

// DefaultLimits are used where Options.Limits is zero.
var DefaultLimits = Limits{Depth: 15, Fields: 500, Aliases: 30, Complexity: 1500, Tokens: 5000}

// credentialFields are the fields that run bcrypt. One of them per
// operation, so aliases cannot multiply password guesses.
var credentialFields = map[string]bool{"login": true, "register": true, "changePassword": true}

// operationLimits refuses operations beyond Limits, and operations with
// more than one credential field, before any resolver runs.
type operationLimits struct{ Limits }

var (
	_ graphql.HandlerExtension        = operationLimits{}
	_ graphql.OperationContextMutator = operationLimits{}
)

func (operationLimits) ExtensionName() string                   { return "OperationLimits" }
func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l operationLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Operation
	if op == nil {
		return nil
	}
	w := walker{doc: oc.Doc, vars: oc.Variables, limits: l.Limits}
	w.walk(op.SelectionSet, 1, true)
	switch {
	case w.badValue != nil:
		return coded(model.CodeBadUserInput, "invalid argument value: "+w.badValue.Error())
	case w.credentials > 1:
		return coded(model.CodeBadUserInput, "at most one login, register or changePassword may run per request")
	case w.tooDeep:
		return coded(model.CodeDepthLimitExceeded, fmt.Sprintf("operation is nested deeper than %d levels", l.Depth))
	case w.fields > l.Fields:
		return coded(model.CodeFieldLimitExceeded, fmt.Sprintf("operation selects more than %d fields", l.Fields))
	case w.aliases > l.Aliases:
		return coded(model.CodeFieldLimitExceeded, fmt.Sprintf("operation uses more than %d aliases", l.Aliases))
	}
	return nil
}

type walker struct {
	doc     *ast.QueryDocument
	vars    map[string]any
	limits  Limits
	fields  int
	aliases int
	// credentials counts credential fields at the root.
	credentials int
	tooDeep     bool
	// badValue is the first argument literal that does not convert (such
	// as 1e999); gqlgen would panic on it later.
	badValue error
}

// walk visits the selections, fragments expanded, and stops as soon as a
// limit is passed, so a fragment bomb costs no more than the limit.
func (w *walker) walk(set ast.SelectionSet, depth int, root bool) {
	for _, sel := range set {
		if w.fields > w.limits.Fields || w.tooDeep || w.badValue != nil {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			if s.Alias != "" && s.Alias != s.Name {
				w.aliases++
			}
			if root && credentialFields[s.Name] {
				w.credentials++
			}
			for _, a := range s.Arguments {
				if _, err := a.Value.Value(w.vars); err != nil && w.badValue == nil {
					w.badValue = err
				}
			}
			if depth > w.limits.Depth {
				w.tooDeep = true
				return
			}
			w.walk(s.SelectionSet, depth+1, false)
		case *ast.InlineFragment:
			w.walk(s.SelectionSet, depth, root)
		case *ast.FragmentSpread:
			if f := w.doc.Fragments.ForName(s.Name); f != nil {
				w.walk(f.SelectionSet, depth, root)
			}
		}
	}
}

func coded(code, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}
