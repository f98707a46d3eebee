// Package embedded runs go-mysql-server, a MySQL-compatible server written in
// Go, inside the process on a loopback port. The demo reconciles into it and
// the integration tests use it when no real server is configured, so that
// both work on a machine with nothing but Go.
package embedded

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	gsql "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/sirupsen/logrus"
)

// Server is a running embedded server with a password-less root account.
type Server struct {
	srv  *server.Server
	addr string
	done chan error
}

// startMu serializes engine creation: go-mysql-server v0.20.0 sets
// process-wide status variables without a lock when an engine is built, so
// two servers starting at once race.
var startMu sync.Mutex

// Start serves databases (created empty) on 127.0.0.1 at a free port.
func Start(databases ...string) (*Server, error) {
	startMu.Lock()
	defer startMu.Unlock()
	dbs := make([]gsql.Database, 0, len(databases))
	for _, name := range databases {
		db := memory.NewDatabase(name)
		db.BaseDatabase.EnablePrimaryKeyIndexes()
		dbs = append(dbs, db)
	}
	// go-mysql-server logs every connection through logrus's global
	// logger at info level, and at error level every client that goes
	// away, including each session dbusers ends on purpose. What a client
	// needs to know it gets as the answer to its statement.
	logrus.SetLevel(logrus.FatalLevel)
	pro := memory.NewDBProvider(dbs...)
	engine := sqle.NewDefault(pro)
	users := engine.Analyzer.Catalog.MySQLDb
	// Without a persister every CREATE USER and GRANT panics (v0.20.0).
	users.SetPersister(&mysql_db.NoopPersister{})
	users.AddRootAccount()

	// Reserve a port, then hand it to the server. The short window between
	// Close and Listen is acceptable for a demo and tests on loopback.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded server: reserve port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return nil, fmt.Errorf("embedded server: reserve port: %w", err)
	}
	srv, err := server.NewServer(server.Config{Protocol: "tcp", Address: addr}, engine, gsql.NewContext, memory.NewSessionBuilder(pro), nil)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	s := &Server{srv: srv, addr: addr, done: make(chan error, 1)}
	go func() { s.done <- srv.Start() }()
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// Port is the TCP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// DSN returns a go-sql-driver/mysql DSN for user and password.
func (s *Server) DSN(user, password string) string {
	if password == "" {
		return fmt.Sprintf("%s@tcp(%s)/", user, s.addr)
	}
	return fmt.Sprintf("%s:%s@tcp(%s)/", user, password, s.addr)
}

// RootDSN is the DSN of the password-less root account.
func (s *Server) RootDSN() string { return s.DSN("root", "") }

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done // Start returns once the listener closes; its error then is the normal end.
	return err
}

// Ready waits until the server accepts connections or ctx ends.
func (s *Server) Ready(ctx context.Context) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", s.addr)
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("embedded server at %s: %w", s.addr, ctx.Err())
		}
	}
}
