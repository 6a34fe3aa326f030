package graph

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// closedSchema returns the validation rules of a server whose schema is not
// public (introspection off): gqlparser's rules, with the variants that
// never suggest a name ("Did you mean ...?" spells out fields, arguments
// and types the caller did not know), and noIntrospection. gqlgen's
// SetDisableSuggestion swaps two of the five suggesting rules; the other
// three are swapped here.
func closedSchema() *rules.Rules {
	r := rules.NewDefaultRules()
	for name, quiet := range map[string]core.Rule{
		"KnownArgumentNames":  rules.KnownArgumentNamesRuleWithoutSuggestions,
		"KnownTypeNames":      rules.KnownTypeNamesRuleWithoutSuggestions,
		"ValuesOfCorrectType": rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
	} {
		r.RemoveRule(name)
		r.AddRule(quiet.Name, quiet.RuleFunc)
	}
	r.AddRule(noIntrospection.Name, noIntrospection.RuleFunc)
	return r
}

// noIntrospection refuses __schema and __type as a validation error
// (GRAPHQL_VALIDATION_FAILED, as Apollo Server does), before anything runs:
// gqlgen without its introspection extension would run the document and
// log an internal error for every such field.
var noIntrospection = core.Rule{
	Name: "NoIntrospection",
	RuleFunc: func(observers *core.Events, addError core.AddErrFunc) {
		observers.OnField(func(_ *core.Walker, f *ast.Field) {
			if f.Name == "__schema" || f.Name == "__type" {
				addError(core.Message("introspection (__schema, __type) is disabled on this server"), core.At(f.Position))
			}
		})
	},
}
