package graph

// PresentError is the error presenter, for the benchmarks of package
// graph_test.
var PresentError = presentError
