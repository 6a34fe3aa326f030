package storage

import (
	"errors"
	"net"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// CheckURI reports whether uri is a connection string the driver accepts,
// without connecting: the scheme mongodb:// or mongodb+srv://, the hosts,
// the options. The driver parses a mongodb+srv:// string only after DNS
// look-ups (its hosts and options come from SRV and TXT records), so that
// one is checked as the mongodb:// string of its single host, which must
// have no port; what its records hold is checked when Open connects.
func CheckURI(uri string) error {
	rest, srv := strings.CutPrefix(uri, "mongodb+srv://")
	if !srv && !strings.HasPrefix(uri, "mongodb://") {
		return errors.New("want a connection string that starts with mongodb:// or mongodb+srv://")
	}
	if srv {
		host := rest
		if i := strings.IndexAny(host, "/?"); i >= 0 {
			host = host[:i]
		}
		if i := strings.LastIndex(host, "@"); i >= 0 {
			host = host[i+1:]
		}
		if strings.Contains(host, ",") {
			return errors.New("mongodb+srv:// names one host (its SRV record lists the servers)")
		}
		if _, _, err := net.SplitHostPort(host); err == nil {
			return errors.New("mongodb+srv:// names a host without a port (its SRV record has the ports)")
		}
		uri = "mongodb://" + withoutOptions(rest, "srvmaxhosts", "srvservicename")
	}
	if _, err := connstring.ParseAndValidate(uri); err != nil {
		// The driver's message, without the string itself: it may hold a
		// password.
		return errors.New(strings.ReplaceAll(err.Error(), uri, "…"))
	}
	return nil
}

// withoutOptions removes the options of the given (lower-case) names from
// the query of a connection string.
func withoutOptions(uri string, names ...string) string {
	base, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	var kept []string
	for _, pair := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(pair, "=")
		drop := false
		for _, n := range names {
			drop = drop || strings.EqualFold(name, n)
		}
		if !drop {
			kept = append(kept, pair)
		}
	}
	if len(kept) == 0 {
		return base
	}
	return base + "?" + strings.Join(kept, "&")
}

// secretOptions are the options of a connection string whose values are
// secrets (authMechanismProperties may hold AWS_SESSION_TOKEN).
var secretOptions = []string{"authmechanismproperties", "tlscertificatekeyfilepassword"}

// RedactURI returns uri with its password and the values of secret
// options replaced by xxxxx, for logs: the user, hosts, database and other
// options stay readable.
func RedactURI(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	// As the driver reads it: the user information ends at the first @.
	if at := strings.Index(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	base, query, ok := strings.Cut(rest, "?")
	if !ok {
		return scheme + "://" + rest
	}
	pairs := strings.Split(query, "&")
	for i, pair := range pairs {
		name, _, hasValue := strings.Cut(pair, "=")
		for _, s := range secretOptions {
			if hasValue && strings.EqualFold(name, s) {
				pairs[i] = name + "=xxxxx"
			}
		}
	}
	return scheme + "://" + base + "?" + strings.Join(pairs, "&")
}
