package model

// Codes a client finds in an error's extensions.code, as Apollo clients
// expect them: every one gatehouse writes, defined once. graph maps auth's
// error codes onto them; they live here, below graph, because the
// JSONObject scalar reports its own errors. gqlgen adds its own
// (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, ...).
const (
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeTooManyRequests = "TOO_MANY_REQUESTS"
	CodeBadRequest      = "BAD_REQUEST"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	// The operation limits (graph.Limits).
	CodeDepthLimitExceeded = "DEPTH_LIMIT_EXCEEDED"
	CodeFieldLimitExceeded = "FIELD_LIMIT_EXCEEDED"
)
