package storage

import (
	"errors"
	"net"
	"net/url"
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
		// The driver's message, without the string itself, the user
		// information or a secret option's value: they may hold a password.
		msg := strings.ReplaceAll(err.Error(), uri, "…")
		for _, field := range []string{"invalid username", "invalid password", "invalid option key", "invalid option value"} {
			if i := strings.Index(msg, field); i >= 0 {
				msg = msg[:i] + field + " (a % must start an escape, like %25 for % itself)"
			}
		}
		for _, s := range secrets(uri) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
		return errors.New(msg)
	}
	return nil
}

// secrets returns the parts of a connection string that may be secret,
// however the driver reads it: the user information (to the last @ before
// the query, and to the last @ of all), the password, and the values of
// secret options, as written and unescaped.
func secrets(uri string) []string {
	_, rest, _ := strings.Cut(uri, "://")
	beforeQuery, query, _ := strings.Cut(rest, "?")
	var s []string
	for _, r := range []string{beforeQuery, rest} {
		if at := strings.LastIndex(r, "@"); at >= 0 {
			s = append(s, r[:at])
			if _, password, ok := strings.Cut(r[:at], ":"); ok {
				s = append(s, password)
			}
		}
	}
	for _, pair := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		if name, value, ok := strings.Cut(pair, "="); ok && secretOption(name) {
			s = append(s, value)
			if v, err := url.QueryUnescape(value); err == nil {
				s = append(s, v)
			}
		}
	}
	var kept []string
	for _, x := range s {
		if x != "" {
			kept = append(kept, x)
		}
	}
	return kept
}

// withoutOptions removes the options of the given (lower-case) names from
// the query of a connection string (options separated by & or ;).
func withoutOptions(uri string, names ...string) string {
	base, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	var kept []string
	for _, pair := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
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

// secretOption reports whether a connection string option's value is a
// secret: authMechanismProperties (it may hold AWS_SESSION_TOKEN) and any
// option whose name holds password, secret, token or key (such as
// tlsCertificateKeyFilePassword), in any case and however escaped.
func secretOption(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.ToLower(name)
	if name == "authmechanismproperties" {
		return true
	}
	for _, s := range []string{"password", "secret", "token", "key"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// RedactURI returns uri for logs and error messages, failing closed. When
// the driver accepts uri (CheckURI), its password and the whole value of
// every secret option (secretOption; the driver separates options with &
// or ;) are replaced by xxxxx, and the user, hosts, database and other
// options stay readable. When it does not, what it means is unknown, so
// only the scheme and the hosts are shown, everything else as xxxxx.
func RedactURI(uri string) string {
	if CheckURI(uri) != nil {
		return redactUnparsed(uri)
	}
	scheme, rest, _ := strings.Cut(uri, "://")
	// As the driver reads it: the user information ends at the first @,
	// and the hosts that follow hold no @, / or ?.
	if at := strings.Index(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	base, query, ok := strings.Cut(rest, "?")
	if !ok {
		return scheme + "://" + rest
	}
	var b strings.Builder
	b.WriteString(scheme + "://" + base + "?")
	for query != "" {
		end := strings.IndexAny(query, "&;")
		if end < 0 {
			end = len(query)
		}
		pair := query[:end]
		if name, _, hasValue := strings.Cut(pair, "="); hasValue && secretOption(name) {
			pair = name + "=xxxxx"
		}
		b.WriteString(pair)
		if end < len(query) {
			b.WriteByte(query[end])
			end++
		}
		query = query[end:]
	}
	return b.String()
}

// redactUnparsed shows the scheme and hosts of a connection string the
// driver refuses, and xxxxx for the user information and for everything
// after the hosts. The hosts follow the last @ before the query (a password
// may hold an unescaped @); when that is ambiguous (an @ only after a ?) or
// what is found does not look like hosts, they are not shown either.
func redactUnparsed(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if ok {
		scheme += "://"
	} else {
		scheme, rest = "", uri
	}
	beforeQuery, _, _ := strings.Cut(rest, "?")
	user, hosts := "", beforeQuery
	if at := strings.LastIndex(beforeQuery, "@"); at >= 0 {
		user, hosts = "xxxxx@", beforeQuery[at+1:]
	} else if strings.Contains(rest, "@") {
		return scheme + "xxxxx"
	}
	hosts, _, more := strings.Cut(hosts, "/")
	if strings.Trim(hosts, hostChars) != "" {
		return scheme + "xxxxx"
	}
	if more || len(beforeQuery) < len(rest) {
		return scheme + user + hosts + "/xxxxx"
	}
	return scheme + user + hosts
}

// hostChars are the characters of a connection string's host list: names,
// IP addresses (IPv6 in brackets), ports, escaped socket paths, commas.
const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[],%"
