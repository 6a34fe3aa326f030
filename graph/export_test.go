package graph

// PresentError is the error presenter, for the benchmarks of package
// graph_test.
var PresentError = presentError

// PlaygroundFiles are the playground's embedded files, for
// TestPlaygroundAssets.
var PlaygroundFiles = playgroundFiles
