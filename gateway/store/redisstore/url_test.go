package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want func(o *redis.UniversalOptions) string // "" when right
		err  string                                 // part of the error, when one is wanted
	}{
		{name: "single", in: "redis://127.0.0.1:6379", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"127.0.0.1:6379"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "default port", in: "redis://cache.example", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"cache.example:6379"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "database", in: "redis://h:1/3", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"h:1"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 3)
		}},
		{name: "trailing slash", in: "redis://h:1/", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"h:1"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "password only", in: "redis://:s3cret@h:1", want: func(o *redis.UniversalOptions) string {
			if o.Username != "" || o.Password != "s3cret" {
				return fmt.Sprintf("user %q password %q", o.Username, o.Password)
			}
			return ""
		}},
		{name: "user and password with @ / and escapes", in: "redis://zb%3Aridge:p@ss/w%3Fo:rd@h:1/2", want: func(o *redis.UniversalOptions) string {
			if o.Username != "zb:ridge" || o.Password != "p@ss/w?o:rd" {
				return fmt.Sprintf("user %q password %q", o.Username, o.Password)
			}
			return check(o.Addrs, []string{"h:1"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 2)
		}},
		{name: "user without password", in: "redis://zbridge@h:1", want: func(o *redis.UniversalOptions) string {
			if o.Username != "zbridge" || o.Password != "" {
				return fmt.Sprintf("user %q password %q", o.Username, o.Password)
			}
			return ""
		}},
		{name: "tls", in: "rediss://h:6380", want: func(o *redis.UniversalOptions) string {
			if o.TLSConfig == nil || o.TLSConfig.MinVersion != tls.VersionTLS12 || o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "" {
				return fmt.Sprintf("TLS config %+v", o.TLSConfig)
			}
			return ""
		}},
		{name: "scheme case", in: "REDIS://h:1", want: func(o *redis.UniversalOptions) string { return "" }},
		{name: "cluster by addresses", in: "redis://a:7000,b:7001,[::1]:7002", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"a:7000", "b:7001", "[::1]:7002"}, o.IsClusterMode, true, o.MasterName, "", o.DB, 0)
		}},
		{name: "cluster by option", in: "redis://a:7000?cluster=1", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"a:7000"}, o.IsClusterMode, true, o.MasterName, "", o.DB, 0)
		}},
		{name: "cluster=0 with one address", in: "redis://a:7000?cluster=0", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"a:7000"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "sentinel", in: "redis://:pw@s1,s2:26380/1?master=mymaster", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"s1:26379", "s2:26380"}, o.IsClusterMode, false, o.MasterName, "mymaster", o.DB, 1)
		}},
		{name: "ipv6", in: "redis://[fe80::1]", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"[fe80::1]:6379"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "options", in: "redis://h:1?client_name=r1&pool_size=20&dial_timeout=2s&read_timeout=1500ms&write_timeout=3s", want: func(o *redis.UniversalOptions) string {
			if o.ClientName != "r1" || o.PoolSize != 20 || o.DialTimeout != 2*time.Second ||
				o.ReadTimeout != 1500*time.Millisecond || o.WriteTimeout != 3*time.Second {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "client name with @", in: "redis://h:1?client_name=r1%40site", want: func(o *redis.UniversalOptions) string {
			if o.ClientName != "r1@site" {
				return o.ClientName
			}
			return ""
		}},
		{name: "client name with an unescaped @", in: "redis://h:1?client_name=r1@site", err: "an '@' in an option as %40"},

		{name: "no scheme", in: "127.0.0.1:6379", err: "missing scheme"},
		{name: "other scheme", in: "http://h:1", err: `scheme "http"`},
		{name: "no address", in: "redis://", err: "no address"},
		{name: "no address after user", in: "redis://:pw@/0", err: "no address"},
		{name: "empty address in list", in: "redis://a:1,,b:2", err: "address 2: empty"},
		{name: "port zero", in: "redis://h:0", err: "bad port"},
		{name: "port too big", in: "redis://h:65536", err: "bad port"},
		{name: "port not a number", in: "redis://h:http", err: "bad port"},
		{name: "no host", in: "redis://:6379", err: "no host"},
		{name: "bare ipv6", in: "redis://fe80::1:6379", err: "in brackets"},
		{name: "bracketed non-ipv6", in: "redis://[host]:1", err: "not an IPv6"},
		{name: "unclosed bracket", in: "redis://[::1:1", err: "missing ]"},
		{name: "database not a number", in: "redis://h:1/x", err: "database"},
		{name: "database negative", in: "redis://h:1/-1", err: "database"},
		{name: "database in cluster", in: "redis://a:1,b:2/1", err: "database 0 only"},
		{name: "unknown option", in: "redis://h:1?timeout=5", err: `unknown option "timeout"`},
		{name: "option twice", in: "redis://h:1?master=a&master=b", err: "given 2 times"},
		{name: "empty master", in: "redis://h:1?master=", err: "master: empty"},
		{name: "bad cluster", in: "redis://h:1?cluster=yes", err: "cluster="},
		{name: "master and cluster", in: "redis://h:1?master=m&cluster=1", err: "do not go together"},
		{name: "bad pool size", in: "redis://h:1?pool_size=0", err: "pool_size"},
		{name: "bad timeout", in: "redis://h:1?read_timeout=5", err: "read_timeout"},
		{name: "unescaped ? in password", in: "redis://:pa?ss@h:1", err: "percent-encode a '?' in the password as %3F"},
		{name: "not a scheme", in: "u:pw@h://x", err: "scheme: want redis:// or rediss://"},
		{name: "@ left out", in: "redis://zbridge:pw", err: "address 1: bad port: want a number from 1 to 65535 (a user name and password go before an '@'"},
		{name: "unknown option with user information", in: "redis://zbridge@h:1?timeout=5", err: "unknown option (not shown: the URL has user information)"},
		{name: "bad value with user information", in: "redis://zbridge@h:1?pool_size=x", err: "pool_size=(not shown"},
		{name: "bad escape in password", in: "redis://:pa%zzss@h:1", err: "password: bad"},
		{name: "store options accepted", in: "redis://h:1?min_replicas=2&replica_timeout=500ms", want: func(o *redis.UniversalOptions) string {
			return check(o.Addrs, []string{"h:1"}, o.IsClusterMode, false, o.MasterName, "", o.DB, 0)
		}},
		{name: "min_replicas negative", in: "redis://h:1?min_replicas=-1", err: "min_replicas"},
		{name: "min_replicas not a number", in: "redis://h:1?min_replicas=one", err: "min_replicas"},
		{name: "min_replicas too many", in: "redis://h:1?min_replicas=65", err: "min_replicas"},
		{name: "min_replicas with sign", in: "redis://h:1?min_replicas=+1", err: "min_replicas"},
		{name: "bad replica_timeout", in: "redis://h:1?replica_timeout=2", err: "replica_timeout"},
		{name: "zero replica_timeout", in: "redis://h:1?replica_timeout=0s", err: "replica_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadURL) {
					t.Fatalf("ParseURL(%q) = %v, want an ErrBadURL error with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.in, err)
			}
			if msg := tc.want(o); msg != "" {
				t.Fatalf("ParseURL(%q): %s", tc.in, msg)
			}
		})
	}
}

// TestParseURLConfig: the Store's settings in a URL, their defaults, and
// Apply.
func TestParseURLConfig(t *testing.T) {
	for _, tc := range []struct {
		in          string
		minReplicas int
		timeout     time.Duration
	}{
		{"redis://h:1", 0, 0},
		{"redis://a:1,b:2", 0, 0},
		{"redis://s1,s2?master=m", 1, 0},
		{"redis://s1,s2?master=m&min_replicas=0", -1, 0},
		{"redis://s1,s2?master=m&min_replicas=2&replica_timeout=250ms", 2, 250 * time.Millisecond},
		{"redis://h:1?min_replicas=1", 1, 0},
		{"redis://a:1,b:2?min_replicas=1&replica_timeout=3s", 1, 3 * time.Second},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParseURLConfig(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if u.Client == nil || len(u.Client.Addrs) == 0 {
				t.Fatalf("client options %+v", u.Client)
			}
			if u.MinReplicas != tc.minReplicas || u.ReplicaTimeout != tc.timeout {
				t.Fatalf("MinReplicas %d ReplicaTimeout %v, want %d %v", u.MinReplicas, u.ReplicaTimeout, tc.minReplicas, tc.timeout)
			}
			cfg := Config{MinReplicas: 7, ReplicaTimeout: time.Minute, Prefix: "p"}
			u.Apply(&cfg)
			want := Config{MinReplicas: 7, ReplicaTimeout: time.Minute, Prefix: "p"}
			if tc.minReplicas != 0 {
				want.MinReplicas = tc.minReplicas
			}
			if tc.timeout != 0 {
				want.ReplicaTimeout = tc.timeout
			}
			if cfg.MinReplicas != want.MinReplicas || cfg.ReplicaTimeout != want.ReplicaTimeout || cfg.Prefix != "p" {
				t.Fatalf("Apply gave MinReplicas %d ReplicaTimeout %v, want %d %v", cfg.MinReplicas, cfg.ReplicaTimeout, want.MinReplicas, want.ReplicaTimeout)
			}
		})
	}
}

// TestDefaultMinReplicas: 1 for a Sentinel client only; New refuses
// MinReplicas for a client it cannot send WAIT through.
func TestDefaultMinReplicas(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"redis://127.0.0.1:1", 0},
		{"redis://127.0.0.1:1,127.0.0.1:2", 0},
		{"redis://127.0.0.1:1?master=m", 1},
	} {
		o, err := ParseURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewUniversalClient(o)
		if got := DefaultMinReplicas(c); got != tc.want {
			t.Errorf("DefaultMinReplicas(%s client %T) = %d, want %d", tc.url, c, got, tc.want)
		}
		c.Close()
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	if _, err := New(Config{Client: ring, MinReplicas: 1, Logger: testLogger(t)}); err == nil {
		t.Error("New with MinReplicas and a Ring client succeeded")
	}
}

func check(addrs, wantAddrs []string, cluster, wantCluster bool, master, wantMaster string, db, wantDB int) string {
	if !slices.Equal(addrs, wantAddrs) || cluster != wantCluster || master != wantMaster || db != wantDB {
		return fmt.Sprintf("addrs %q cluster %v master %q db %d; want %q %v %q %d",
			addrs, cluster, master, db, wantAddrs, wantCluster, wantMaster, wantDB)
	}
	return ""
}

// TestParseURLHidesPassword: no error message shows the password,
// whatever else is wrong with the URL: one URL for every error ParseURL
// gives, each with a password (pw) where the error would quote it if it
// quoted its part of the URL.
func TestParseURLHidesPassword(t *testing.T) {
	const pw = "Sup3rSecretPw"
	for _, tc := range []struct {
		name, in string
		err      string // part of the error
	}{
		{"missing scheme", "zbridge:" + pw + "@h:1", "missing scheme"},
		{"other scheme", "ftp://u:" + pw + "@h:1", `scheme "ftp"`},
		{"not a scheme", "u:" + pw + "@h://x", "scheme: want"},
		{"? in the password", "redis://zbridge:Kq7?" + pw + "=Zx@redis.example:6379/0", "%3F"},
		{"? and # in the password", "redis://zbridge:Kq7#?" + pw + "@h:1", "%3F"},
		{"bad escape in the user name", "redis://u%zz:" + pw + "@h:1", "user name: bad"},
		{"bad escape in the password", "redis://u:" + pw + "%zz@h:1", "password: bad"},
		{"no address", "redis://u:" + pw + "@/0", "no address"},
		{"empty address", "redis://u:p@" + pw + ",,b:2", "address 2: empty"},
		{"missing ]", "rediss://u:p@[" + pw, "missing ]"},
		{"junk after ]", "redis://u:p@[::1]" + pw, "junk after ]"},
		{"not IPv6 in brackets", "redis://u:p@[" + pw + "]:1", "not an IPv6"},
		{"IPv6 without brackets", "redis://zbridge:pa:" + pw, "in brackets"},
		{"no host", "redis://u:p@:" + pw, "no host"},
		{"bad host", "redis://u:p@" + pw + "#x:1", "bad host"},
		{"bad port", "redis://u:" + pw + "@h:0", "bad port"},
		{"@ left out", "redis://zbridge:" + pw, "bad port"},
		{"@ left out, a path", "redis://zbridge:pa/" + pw, "bad port"},
		{"@ left out, options", "redis://zbridge:pa?" + pw + "=1", "bad port"},
		{"host left out, bad query escape", "redis://u:p@ss?%" + pw, "query: a bad %-escape"},
		{"host left out, option twice", "redis://u:p@ss?" + pw + "=1&" + pw + "=2", "given 2 times"},
		{"host left out, unknown option", "redis://u:p@ss?" + pw, "unknown option"},
		{"empty master", "redis://u:" + pw + "@h:1?master=", "master: empty"},
		{"bad cluster", "redis://u:p@ss?cluster=" + pw, "cluster="},
		{"bad pool size", "redis://u:p@ss?pool_size=" + pw, "pool_size="},
		{"bad min_replicas", "redis://u:p@ss?min_replicas=" + pw, "min_replicas="},
		{"bad replica_timeout", "redis://u:p@ss?replica_timeout=" + pw, "replica_timeout="},
		{"bad dial_timeout", "redis://u:p@ss?dial_timeout=" + pw, "dial_timeout="},
		{"master and cluster", "redis://u:" + pw + "@h:1?master=m&cluster=1", "do not go together"},
		{"bad database", "redis://u:p@ss/" + pw, "database"},
		{"database in a cluster", "redis://u:" + pw + "@a:1,b:2/5", "database 0 only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseURL(tc.in)
			if err == nil || !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ParseURL(%q) = %v, want an ErrBadURL error with %q", tc.in, err, tc.err)
			}
			if strings.Contains(err.Error(), "Secret") {
				t.Errorf("ParseURL(%q): the error shows the password: %v", tc.in, err)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379",
		"redis://:secret@10.0.0.5:6379/2",
		"rediss://zbridge:pw@redis.example.com:6380/0?client_name=region1",
		"redis://:pw@sentinel1:26379,sentinel2:26379/0?master=zbridge",
		"redis://node1:7000,node2:7001,node3:7002",
		"redis://[::1]:6379?cluster=1&dial_timeout=2s",
		"redis://h:1?read_timeout=500ms&write_timeout=1s&pool_size=50",
		"redis://u:p@ss@h",
	} {
		f.Add(s)
	}
	for _, pw := range []string{"s3cr3tpassword", "Kq7?s3cr3tPart=Zx", "p@ss/w?o:rd", "pa%3Fss", "p@ss?x=1", "[::1]:0,h/0?master=m"} {
		f.Add(pw)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hidesPassword(t, s)
		o, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v does not wrap ErrBadURL", err)
			}
			return
		}
		if len(o.Addrs) == 0 {
			t.Fatalf("ParseURL(%q) gave no address", s)
		}
		for _, a := range o.Addrs {
			if _, err := hostPort(a, "1"); err != nil {
				t.Fatalf("ParseURL(%q) gave address %q that does not parse again: %v", s, a, err)
			}
		}
		if o.MasterName != "" && o.IsClusterMode {
			t.Fatalf("ParseURL(%q) gave Sentinel and Cluster", s)
		}
		if o.IsClusterMode && o.DB != 0 {
			t.Fatalf("ParseURL(%q) gave Cluster with database %d", s, o.DB)
		}
		// The parts found make a URL that parses to the same options.
		again, err := ParseURL(format(o))
		if err != nil {
			t.Fatalf("ParseURL(%q) = %+v, whose URL %q does not parse: %v", s, o, format(o), err)
		}
		if !slices.Equal(again.Addrs, o.Addrs) || again.Username != o.Username || again.Password != o.Password ||
			again.DB != o.DB || again.MasterName != o.MasterName || again.IsClusterMode != o.IsClusterMode ||
			(again.TLSConfig == nil) != (o.TLSConfig == nil) || again.ClientName != o.ClientName {
			t.Fatalf("ParseURL(%q) = %+v, but its URL %q parses to %+v", s, o, format(o), again)
		}
	})
}

// passwordMark begins each piece of the passwords hidesPassword tries;
// "s3cr3t" in it must never be in an error.
const passwordMark = "Kq7s3cr3tZx"

// passwordURLs are URLs with a password (PASSWORD) for hidesPassword: with
// the user information as it should be, and with the '@' and host left
// out.
var passwordURLs = []string{
	"redis://zbridge:PASSWORD@redis.example:6379/0",
	"redis://zbridge:PASSWORD",
	"redis://zbridge:PASSWORD/0?master=m",
	"rediss://zbridge:PASSWORD@s1,s2:26380/1?master=mymaster",
	"redis://:PASSWORD@h:1?bogus=1",
	"redis://zbridge:PASSWORD@h:0",
	"redis://zbridge:PASSWORD@a:1,b:2/5",
}

// hidesPassword checks that no error of ParseURL shows a password made of
// s: s with passwordMark before it and after each character that ends a
// part of a URL, so that every piece of the password ParseURL could take
// for a part of its own (a port, an option, a database) begins with the
// mark.
func hidesPassword(t *testing.T, s string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(passwordMark)
	for _, c := range []byte(s) {
		b.WriteByte(c)
		if strings.IndexByte(":@/?#[],=&;%+", c) >= 0 {
			b.WriteString(passwordMark)
		}
	}
	pw := b.String()
	for _, u := range passwordURLs {
		in := strings.Replace(u, "PASSWORD", pw, 1)
		if _, err := ParseURL(in); err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("ParseURL(%q): the error shows the password: %v", in, err)
		}
	}
}

// format writes options back as a URL.
func format(o *redis.UniversalOptions) string {
	var b strings.Builder
	if o.TLSConfig != nil {
		b.WriteString("rediss://")
	} else {
		b.WriteString("redis://")
	}
	if o.Username != "" || o.Password != "" {
		b.WriteString(escape(o.Username, ":@/?%,"))
		if o.Password != "" {
			b.WriteString(":" + escape(o.Password, "?%"))
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(o.Addrs, ","))
	fmt.Fprintf(&b, "/%d?cluster=%v", o.DB, o.IsClusterMode)
	if o.MasterName != "" {
		b.WriteString("&master=" + escape(o.MasterName, "&=%#+;?@"))
	}
	if o.ClientName != "" {
		b.WriteString("&client_name=" + escape(o.ClientName, "&=%#+;?@"))
	}
	return b.String()
}

// escape %-escapes the bytes of s found in chars, and those not printable.
func escape(s, chars string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(chars, c) >= 0 || c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
