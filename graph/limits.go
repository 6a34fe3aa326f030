package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"

	"gatehouse/graph/model"
)

// Limits bound what one GraphQL document may ask for, and so what it
// costs to parse, validate and run. All but Complexity are checked before
// gqlparser validates the document, whose cost they bound: validation is
// quadratic in the worst case. They count the whole document, every
// operation and fragment definition, as validation walks it. The defaults
// let the playground, Apollo Client's queries and full schema
// introspection (184 tokens, 489 selections) through with room to spare.
type Limits struct {
	// Tokens is the most tokens a document may have, comments included:
	// it bounds the work of parsing.
	Tokens int
	// Depth is the deepest field nesting allowed.
	Depth int
	// Selections is the most fields, fragment spreads and inline
	// fragments allowed, fragments expanded, so that a fragment bomb or
	// cycle stops at the limit. Fragment definitions count on their own
	// as well as where they are spread: validation walks them both ways.
	Selections int
	// Aliases is the most aliased fields allowed. Introspection fields
	// (__schema, __type and all under them) may not be aliased at all
	// while introspection is served: one full introspection is the
	// costliest answer gatehouse gives, and aliases would repeat it.
	Aliases int
	// Overlaps is the most pairs of fields with one response name in one
	// selection set (fragments merged into it), and of fragment spreads
	// merged into one selection set. Validation compares every such pair,
	// which is what made it quadratic.
	Overlaps int
	// Complexity is gqlgen's complexity limit (one per field, lists
	// multiplied by their page size), checked after validation.
	Complexity int
}

// DefaultLimits are used where Options.Limits is zero.
var DefaultLimits = Limits{Tokens: 1000, Depth: 15, Selections: 1000, Aliases: 30, Overlaps: 200, Complexity: 1500}

// documentLimits refuses a document beyond Limits before gqlparser
// validates it: it counts the tokens (no allocation), parses, and walks the
// document, stopping at the first limit passed. gqlgen then parses the
// document again (it has no hook between parsing and validation), so a
// new document is parsed twice; a document in the parsed-query cache
// passed before and is neither. It runs before APQ, so that the APQ cache
// only keeps query texts that passed.
type documentLimits struct {
	Limits
	cache *queryCache
	// introspection is served: its fields may not be aliased. Off,
	// validation refuses them, and they cost nothing to run.
	introspection bool
}

var (
	_ graphql.HandlerExtension          = documentLimits{}
	_ graphql.OperationParameterMutator = documentLimits{}
)

func (documentLimits) ExtensionName() string                   { return "DocumentLimits" }
func (documentLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l documentLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil
	}
	if _, ok := l.cache.Get(ctx, p.Query); ok {
		return nil
	}
	// Counting tokens costs no allocation, parsing a few per token; and a
	// token takes at least a byte.
	if len(p.Query) > l.Tokens && countTokens(p.Query, l.Tokens) > l.Tokens {
		return coded(errcode.ParseFailed, fmt.Sprintf("exceeded token limit of %d", l.Tokens))
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.Tokens)
	if err != nil { // as gqlgen reports it, which would parse it again
		gerr := gqlerror.WrapIfUnwrapped(err)
		errcode.Set(gerr, errcode.ParseFailed)
		return gerr
	}
	return l.check(doc)
}

// check walks doc as validation will and refuses it at the first limit
// passed.
func (l documentLimits) check(doc *ast.QueryDocument) *gqlerror.Error {
	w := docWalker{limits: l.Limits, fragments: fragmentsByName(doc), tree: newRespTree(), introspection: l.introspection}
	for _, op := range doc.Operations {
		w.walk(op.SelectionSet, w.tree.add(), 1, false)
	}
	// Validation walks every fragment definition on its own too; aliases
	// count once, where operations use them.
	w.inFragment = true
	for _, f := range doc.Fragments {
		w.walk(f.SelectionSet, w.tree.add(), 1, false)
	}
	switch {
	case w.tooDeep:
		return coded(model.CodeDepthLimitExceeded, fmt.Sprintf("document nests fields deeper than %d levels", l.Depth))
	case w.selections > l.Selections:
		return coded(model.CodeFieldLimitExceeded, fmt.Sprintf("document has more than %d selections (fields, fragment spreads, inline fragments; fragments expanded)", l.Selections))
	case w.aliases > l.Aliases:
		return coded(model.CodeFieldLimitExceeded, fmt.Sprintf("document uses more than %d aliases", l.Aliases))
	case w.introspectionAlias:
		return coded(model.CodeFieldLimitExceeded, "introspection fields (__schema, __type and those under them) may not be aliased")
	case w.overlaps > l.Overlaps:
		return coded(model.CodeFieldLimitExceeded, fmt.Sprintf("document has more than %d pairs of fields with one response name, or of fragment spreads, in one selection set", l.Overlaps))
	}
	return nil
}

// fragmentsByName indexes doc's fragments, the first of a name as
// validation does; Fragments.ForName is a linear search.
func fragmentsByName(doc *ast.QueryDocument) map[string]*ast.FragmentDefinition {
	m := make(map[string]*ast.FragmentDefinition, len(doc.Fragments))
	for _, f := range doc.Fragments {
		if _, ok := m[f.Name]; !ok {
			m[f.Name] = f
		}
	}
	return m
}

// docWalker counts what validation will walk.
type docWalker struct {
	limits     Limits
	fragments  map[string]*ast.FragmentDefinition
	tree       *respTree
	selections int
	aliases    int
	overlaps   int
	tooDeep    bool
	// introspection is served, and introspectionAlias set by an aliased
	// introspection field.
	introspection, introspectionAlias bool
	// inFragment is set while fragment definitions are walked on their own.
	inFragment bool
}

func (w *docWalker) over() bool {
	l := w.limits
	return w.tooDeep || w.selections > l.Selections || w.aliases > l.Aliases || w.overlaps > l.Overlaps || w.introspectionAlias
}

// walk visits set, the selection set of node, fragments expanded, and
// stops as soon as a limit is passed, so that a fragment bomb or cycle
// costs no more than the limit. introspection says set is under an
// introspection field.
func (w *docWalker) walk(set ast.SelectionSet, node, depth int, introspection bool) {
	for _, sel := range set {
		if w.over() {
			return
		}
		w.selections++
		switch s := sel.(type) {
		case *ast.Field:
			if depth > w.limits.Depth {
				w.tooDeep = true
				return
			}
			in := introspection || s.Name == "__schema" || s.Name == "__type"
			if s.Alias != s.Name && !w.inFragment {
				w.aliases++
				w.introspectionAlias = w.introspectionAlias || in && w.introspection
			}
			c := w.tree.child(node, s.Alias)
			w.overlaps += w.tree.fields[c]
			w.tree.fields[c]++
			w.walk(s.SelectionSet, c, depth+1, in)
		case *ast.InlineFragment:
			w.walk(s.SelectionSet, node, depth, introspection)
		case *ast.FragmentSpread:
			w.overlaps += w.tree.spreads[node]
			w.tree.spreads[node]++
			if f := w.fragments[s.Name]; f != nil {
				w.walk(f.SelectionSet, node, depth, introspection)
			}
		}
	}
}

// respTree is the response of an operation or fragment as validation
// merges it: fields with one response name in one selection set
// (fragments and inline fragments included) merge into one node, and
// their sub-selections merge in turn. Validation compares every two
// fields of a node, and every two fragment spreads in its selection set.
type respTree struct {
	ids     map[respKey]int // the node of each response name in each node
	fields  []int           // fields merged into each node
	spreads []int           // fragment spreads in each node's selection set
}

type respKey struct {
	parent int
	name   string
}

func newRespTree() *respTree { return &respTree{ids: make(map[respKey]int)} }

// add adds a node: the root of an operation or fragment definition.
func (t *respTree) add() int {
	t.fields = append(t.fields, 0)
	t.spreads = append(t.spreads, 0)
	return len(t.fields) - 1
}

// child returns the node of name in parent's selection set.
func (t *respTree) child(parent int, name string) int {
	k := respKey{parent, name}
	id, ok := t.ids[k]
	if !ok {
		id = t.add()
		t.ids[k] = id
	}
	return id
}

// countTokens counts query's tokens as the parser does, comments
// included, up to max+1.
func countTokens(query string, max int) int {
	l := lexer.New(&ast.Source{Input: query})
	n := 0
	for n <= max {
		tok, err := l.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			break
		}
		n++
	}
	return n
}

// credentialFields are the fields that check a password or a second
// factor's code. One of them per operation, so aliases cannot multiply
// guesses.
var credentialFields = map[string]bool{
	"login": true, "register": true, "changePassword": true,
	"beginTotpEnrollment": true, "confirmTotpEnrollment": true, "verifySecondFactor": true,
	"disableTotp": true, "regenerateRecoveryCodes": true, "finishPasskeyLogin": true,
}

// operationLimits refuses, after validation, an operation with more than
// one credential field or with an argument literal that does not convert,
// before any resolver runs. The document's size was checked by
// documentLimits.
type operationLimits struct{}

var (
	_ graphql.HandlerExtension        = operationLimits{}
	_ graphql.OperationContextMutator = operationLimits{}
)

func (operationLimits) ExtensionName() string                   { return "OperationLimits" }
func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (operationLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Operation
	if op == nil {
		return nil
	}
	w := walker{fragments: fragmentsByName(oc.Doc), vars: oc.Variables}
	w.walk(op.SelectionSet, true)
	switch {
	case w.badValue != nil:
		return coded(model.CodeBadUserInput, "invalid argument value: "+w.badValue.Error())
	case w.credentials > 1:
		return coded(model.CodeBadUserInput, "at most one field that checks a password or a code "+
			"(login, register, changePassword, verifySecondFactor, the TOTP mutations) may run per request")
	case op.Operation == ast.Subscription && w.rootFields != 1:
		// GraphQL's "single root field" rule, which gqlparser does not
		// apply to aliases (gqlgen then fails inside).
		return coded(errcode.ValidationFailed, "a subscription selects exactly one field")
	case w.jsonValues > maxArgumentJSONValues:
		return coded(model.CodeBadUserInput, fmt.Sprintf("the JSONObject arguments of one request may hold at most %d values "+
			"in all (a variable counts each time it is used)", maxArgumentJSONValues))
	}
	return nil
}

// maxArgumentJSONValues bounds the values of every JSONObject argument of
// an operation together. The body holds at most maxJSONValues, but each
// field decodes its arguments anew: one large variable given to 30 aliased
// fields cost 30 times the decoding the body's limit was set for.
const maxArgumentJSONValues = 2 * maxJSONValues

type walker struct {
	fragments map[string]*ast.FragmentDefinition
	vars      map[string]any
	// credentials counts credential fields at the root.
	credentials int
	// badValue is the first argument literal that does not convert (such
	// as 1e999); gqlgen would panic on it later.
	badValue error
	// jsonValues counts the values of the JSONObject arguments.
	jsonValues int
	// rootFields counts the fields at the root, fragments expanded.
	rootFields int
}

// walk visits the selections, fragments expanded; validation has refused
// fragment cycles, and documentLimits bounded the expansion.
func (w *walker) walk(set ast.SelectionSet, root bool) {
	for _, sel := range set {
		if w.badValue != nil {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			if root && credentialFields[s.Name] {
				w.credentials++
			}
			if root {
				w.rootFields++
			}
			for _, a := range s.Arguments {
				v, err := a.Value.Value(w.vars)
				if err != nil {
					w.badValue = err
					return
				}
				if t := a.Value.ExpectedType; t != nil && t.Name() == "JSONObject" {
					w.jsonValues += countValues(v)
				}
			}
			w.walk(s.SelectionSet, false)
		case *ast.InlineFragment:
			w.walk(s.SelectionSet, root)
		case *ast.FragmentSpread:
			if f := w.fragments[s.Name]; f != nil {
				w.walk(f.SelectionSet, root)
			}
		}
	}
}

// countValues counts the values in v, a decoded JSON value: itself and
// everything it holds.
func countValues(v any) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			n += countValues(x)
		}
	case []any:
		for _, x := range v {
			n += countValues(x)
		}
	}
	return n
}

func coded(code, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}
