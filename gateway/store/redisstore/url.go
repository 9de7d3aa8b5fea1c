package redisstore

import (
	"crypto/tls"
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
// Errors wrap ErrBadURL and name the part at fault, never the password.
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
		return nil, urlErr("scheme %q: want redis or rediss", clip(scheme))
	}

	// Split off the query, then the path, then the user information. The
	// password may hold '@' and '/' as they are (the authority ends at the
	// first '/' after the last '@'), but a '?' must be escaped as %3F.
	rest, query, _ := strings.Cut(rest, "?")
	if at := strings.IndexByte(query, '@'); at >= 0 && !strings.Contains(rest, "@") &&
		!strings.Contains(query[:at], "=") {
		// Not echoed: it is likely part of a password.
		return nil, urlErr("user information: a '?' in a password must be escaped as %%3F")
	}
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

	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, urlErr("query: %v", err)
	}
	cluster := false
	for key, vals := range q {
		if len(vals) != 1 {
			return nil, urlErr("option %s given %d times", clip(key), len(vals))
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
				return nil, urlErr("cluster=%q: want 1 or 0", clip(v))
			}
		case "client_name":
			o.ClientName = v
		case "pool_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, urlErr("pool_size=%q: want a positive number", clip(v))
			}
			o.PoolSize = n
		case "min_replicas":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxMinReplicas || v[0] == '+' {
				return nil, urlErr("min_replicas=%q: want a number from 0 to %d", clip(v), maxMinReplicas)
			}
			u.MinReplicas = n
			if n == 0 {
				u.MinReplicas = -1
			}
		case "replica_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, urlErr("%s=%q: want a positive duration such as 2s", key, clip(v))
			}
			u.ReplicaTimeout = d
		case "dial_timeout", "read_timeout", "write_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, urlErr("%s=%q: want a positive duration such as 5s", key, clip(v))
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
			return nil, urlErr("unknown option %q (known: master, cluster, client_name, pool_size, dial_timeout, read_timeout, write_timeout, min_replicas, replica_timeout)", clip(key))
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
	if hosts == "" {
		return nil, urlErr("no address")
	}
	for i, h := range strings.Split(hosts, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			return nil, urlErr("address %d: %v", i+1, err)
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
			return nil, urlErr("database %q: want a number", clip(path[1:]))
		}
		if cluster && db != 0 {
			return nil, urlErr("database %d: a Redis Cluster has database 0 only", db)
		}
		o.DB = db
	}
	return u, nil
}

// hostPort checks one address of a URL and adds the default port.
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty")
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") { // [IPv6] or [IPv6]:port
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("%q: missing ]", clip(h))
		}
		host = h[1:end]
		switch after := h[end+1:]; {
		case after == "":
		case after[0] == ':':
			port = after[1:]
		default:
			return "", fmt.Errorf("%q: junk after ]", clip(h))
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", fmt.Errorf("%q: not an IPv6 address", clip(h))
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("%q: an IPv6 address goes in brackets", clip(h))
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q: no host", clip(h))
	}
	if strings.ContainsAny(host, " /?#@\t\r\n") {
		return "", fmt.Errorf("%q: bad host", clip(h))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
		return "", fmt.Errorf("%q: bad port %q", clip(h), clip(port))
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
