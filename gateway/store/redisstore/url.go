package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default ports of ParseURL's addresses when they name none.
const (
	DefaultPort         = "6379"
	DefaultSentinelPort = "26379"
)

// ParseURL parses a Redis URL into options for redis.NewUniversalClient:
//
//	redis://[user:password@]host:port[,host:port...][/db][?option=value&...]
//	rediss://...   the same over TLS (1.2 or later, server certificate verified)
//
// The kind of client follows from the URL: with master=NAME the addresses
// are Sentinels watching the master NAME (a failover client); with more
// than one address, or cluster=1, they are seed nodes of a Redis Cluster
// (which has database 0 only); otherwise the address is a single server. A
// port left out is 6379, or 26379 for Sentinels. IPv6 addresses go in
// brackets: [::1]:6379.
//
// The options, all optional, are master=NAME, cluster=1 (or 0, true,
// false), client_name=NAME, pool_size=N, and dial_timeout, read_timeout and
// write_timeout as Go durations (5s, 500ms); and two for the Store, which
// ParseURL checks but leaves out (see [ParseURLConfig]): min_replicas=N
// and replica_timeout=DURATION. The user name and password are the data
// nodes'; Sentinels are contacted without credentials.
//
// A '?' in the password must be percent-encoded (%3F), and so must an '@'
// in an option's value (%40): a '?' before the last '@' is refused.
//
// Errors wrap ErrBadURL and name the part at fault, never the password:
// they never quote the addresses or the path ("user:password" without its
// '@' reads as an address whose port is the password), nor, in a URL with
// user information, the options.
func ParseURL(s string) (*redis.UniversalOptions, error) {
	u, err := ParseURLConfig(s)
	if err != nil {
		return nil, err
	}
	return u.Client, nil
}

// URLConfig is what a Redis URL says: the client's options and the Store's
// settings (Config fields) the URL carries.
type URLConfig struct {
	// Client are the options for redis.NewUniversalClient (see ParseURL).
	Client *redis.UniversalOptions
	// MinReplicas is min_replicas=N as Config.MinReplicas takes it: N for
	// N > 0, -1 (none) for min_replicas=0; when the URL does not say, 1
	// for a Sentinel URL and 0 (the Store's default) for others.
	MinReplicas int
	// ReplicaTimeout is replica_timeout=DURATION (0 when the URL does not
	// say: DefaultReplicaTimeout).
	ReplicaTimeout time.Duration
}

// Apply sets the fields of cfg that the URL carries; the others are left
// as they are.
func (u *URLConfig) Apply(cfg *Config) {
	if u.MinReplicas != 0 {
		cfg.MinReplicas = u.MinReplicas
	}
	if u.ReplicaTimeout != 0 {
		cfg.ReplicaTimeout = u.ReplicaTimeout
	}
}

// maxMinReplicas bounds min_replicas=N.
const maxMinReplicas = 64

// ParseURLConfig parses a Redis URL (see ParseURL) into the client's
// options and the Store's settings:
//
//   - min_replicas=N: an append counts as written once N replicas have
//     it (Config.MinReplicas; Redis WAIT). Default: 1 for a Sentinel URL
//     (master=NAME), whose master has replicas to fail over to, else 0.
//     Give min_replicas=0 to a Sentinel URL whose master has no replica.
//   - replica_timeout=DURATION: how long an append waits for them
//     (Config.ReplicaTimeout; default 2s) before the Store keeps it in its
//     write buffer, degraded, and writes it again.
//
// Pass the result's Client to redis.NewUniversalClient, and Apply it to
// the Config of the Store.
func ParseURLConfig(s string) (*URLConfig, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, urlErr("missing scheme: want redis:// or rediss://")
	}
	o := &redis.UniversalOptions{}
	u := &URLConfig{Client: o}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		// ServerName stays empty: crypto/tls takes each node's from the
		// address dialled, which a Cluster or Sentinel set needs.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		if !isScheme(scheme) { // then it may be anything, a password included
			return nil, urlErr("scheme: want redis:// or rediss://")
		}
		return nil, urlErr("scheme %q: want redis or rediss", clip(scheme))
	}

	// Split off the query, then the path, then the user information. The
	// password may hold '@' and '/' as they are (the authority ends at the
	// first '/' after the last '@'), but not '?': the rest of the password
	// would be read as options, and quoted in their errors.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 && strings.Contains(rest[:at], "?") {
		return nil, urlErr("a '?' before the '@' that ends the user information: " +
			"percent-encode a '?' in the password as %%3F (and an '@' in an option as %%40)")
	}
	// A URL with user information may have spilled some of its password
	// into the options (a host left out, "user:p@ss?x"): their text is not
	// quoted then. The addresses and the path never are: "user:password"
	// without '@' reads as an address, and its password as the port.
	hasUser := strings.Contains(rest, "@")
	show := func(s string) string {
		if hasUser {
			return "(not shown: the URL has user information)"
		}
		return strconv.Quote(clip(s))
	}
	rest, query, _ := strings.Cut(rest, "?")
	authority, path := rest, ""
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if i := strings.IndexByte(rest[at:], '/'); i >= 0 {
			authority, path = rest[:at+i], rest[at+i:]
		}
	} else if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	hosts := authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, pass, hasPass := strings.Cut(authority[:at], ":")
		var err error
		if o.Username, err = url.PathUnescape(user); err != nil {
			return nil, urlErr("user name: bad %%-escape")
		}
		if hasPass {
			if o.Password, err = url.PathUnescape(pass); err != nil {
				return nil, urlErr("password: bad %%-escape") // never the password itself
			}
		}
		hosts = authority[at+1:]
	}
	// The addresses are checked before the options, so that the options
	// of "user:password?x" (no '@': an address with a bad port) are not
	// quoted either.
	if hosts == "" {
		return nil, urlErr("no address")
	}
	addrs := strings.Split(hosts, ",")
	for i, h := range addrs {
		if _, err := hostPort(h, DefaultPort); err != nil {
			return nil, addrErr(i, err, hasUser)
		}
	}

	q, err := url.ParseQuery(query)
	if err != nil {
		if hasUser {
			return nil, urlErr("query: a bad %%-escape or separator")
		}
		return nil, urlErr("query: %v", err)
	}
	cluster := false
	for key, vals := range q {
		if len(vals) != 1 {
			return nil, urlErr("option %s given %d times", show(key), len(vals))
		}
		v := vals[0]
		switch key {
		case "master":
			if v == "" {
				return nil, urlErr("master: empty name")
			}
			o.MasterName = v
		case "cluster":
			if cluster, err = strconv.ParseBool(v); err != nil {
				return nil, urlErr("cluster=%s: want 1 or 0", show(v))
			}
		case "client_name":
			o.ClientName = v
		case "pool_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, urlErr("pool_size=%s: want a positive number", show(v))
			}
			o.PoolSize = n
		case "min_replicas":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxMinReplicas || v[0] == '+' {
				return nil, urlErr("min_replicas=%s: want a number from 0 to %d", show(v), maxMinReplicas)
			}
			u.MinReplicas = n
			if n == 0 {
				u.MinReplicas = -1
			}
		case "replica_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, urlErr("%s=%s: want a positive duration such as 2s", key, show(v))
			}
			u.ReplicaTimeout = d
		case "dial_timeout", "read_timeout", "write_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, urlErr("%s=%s: want a positive duration such as 5s", key, show(v))
			}
			switch key {
			case "dial_timeout":
				o.DialTimeout = d
			case "read_timeout":
				o.ReadTimeout = d
			default:
				o.WriteTimeout = d
			}
		default:
			return nil, urlErr("unknown option %s (known: master, cluster, client_name, pool_size, dial_timeout, read_timeout, write_timeout, min_replicas, replica_timeout)", show(key))
		}
	}
	if o.MasterName != "" && cluster {
		return nil, urlErr("master= (Sentinel) and cluster=1 do not go together")
	}
	if o.MasterName != "" && u.MinReplicas == 0 {
		u.MinReplicas = 1
	}

	port := DefaultPort
	if o.MasterName != "" {
		port = DefaultSentinelPort
	}
	for i, h := range addrs {
		addr, err := hostPort(h, port)
		if err != nil {
			return nil, addrErr(i, err, hasUser)
		}
		o.Addrs = append(o.Addrs, addr)
	}
	if len(o.Addrs) > 1 && o.MasterName == "" {
		cluster = true
	}
	o.IsClusterMode = cluster

	if path != "" && path != "/" {
		db, err := strconv.Atoi(path[1:])
		if err != nil || db < 0 || path[1] == '+' {
			return nil, urlErr("database (the path): want a number from 0")
		}
		if cluster && db != 0 {
			return nil, urlErr("database (the path): a Redis Cluster has database 0 only")
		}
		o.DB = db
	}
	return u, nil
}

// isScheme says whether s is a URL scheme by its syntax (RFC 3986): a
// letter, then letters, digits, '+', '-' and '.'.
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// errPort is hostPort's error about a port.
var errPort = errors.New("bad port: want a number from 1 to 65535")

// addrErr is the error about the i'th address (from 0), which does not
// quote it.
func addrErr(i int, err error, hasUser bool) error {
	if errors.Is(err, errPort) && !hasUser {
		return urlErr("address %d: %v (a user name and password go before an '@': redis://user@host:port)", i+1, err)
	}
	return urlErr("address %d: %v", i+1, err)
}

// hostPort checks one address of a URL and adds the default port. Its
// errors never quote the address, which may be user information whose
// '@' was left out ("user:password").
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty")
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") { // [IPv6] or [IPv6]:port
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", errors.New("missing ] after an IPv6 address")
		}
		host = h[1:end]
		switch after := h[end+1:]; {
		case after == "":
		case after[0] == ':':
			port = after[1:]
		default:
			return "", errors.New("junk after ]")
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", errors.New("not an IPv6 address in brackets")
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", errors.New("an IPv6 address goes in brackets")
		}
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.ContainsAny(host, " /?#@\t\r\n") {
		return "", errors.New("bad host: a blank, '/', '?', '#' or '@' in it")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
		return "", errPort
	}
	return net.JoinHostPort(host, port), nil
}

func urlErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, args...))
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
