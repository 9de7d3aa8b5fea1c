module github.com/zbridge/zbridge

go 1.26.0

require (
	github.com/leodido/go-syslog/v4 v4.5.0
	github.com/racingmars/go3270 v0.9.13
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/crypto v0.58.0
)

require golang.org/x/sys v0.49.0 // indirect
