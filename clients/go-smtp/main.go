// Go's net/smtp as an application uses it, as a command strategy of ses-fault-harness.
//
//	send               smtp.SendMail for each message, the package's own example: a new
//	                   connection for every message; an error is logged and the loop goes on
//	send -one-client   one smtp.Client (smtp.Dial, Hello, StartTLS/Auth as needed) for the
//	                   whole batch, Mail/Rcpt/Data per message as the package's Client example
//	                   does; an error is logged and the loop goes on with the next message
//
// net/smtp has no message builder: an application writes the message's bytes itself, so each
// message is sent as the harness wrote it (the .eml file). One JSON claim a line goes to
// HARNESS_CLAIMS. Built with `go build` from this single file and the standard library alone.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
)

type message struct {
	ID         string   `json:"id"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	File       string   `json:"file"`
}

type claim struct {
	ID     string  `json:"id"`
	Status string  `json:"status"`
	Code   *int    `json:"code"`
	Text   *string `json:"text"`
}

var claims *os.File

func record(m message, err error) {
	c := claim{ID: m.ID, Status: "sent"}
	if err != nil {
		c.Status = "failed"
		text := err.Error()
		var reply *textproto.Error
		var socket *net.OpError
		if errors.As(err, &reply) {
			c.Code, text = &reply.Code, reply.Msg
		} else if errors.As(err, &socket) { // without the ports, which differ every run
			text = socket.Err.Error()
		}
		c.Text = &text
		log.Printf("could not send %s: %v", m.ID, err)
	}
	line, _ := json.Marshal(c)
	if _, err := claims.Write(append(line, '\n')); err != nil {
		log.Fatal(err)
	}
}

func tlsConfig(host string) *tls.Config {
	config := &tls.Config{ServerName: host}
	if path := os.Getenv("SMTP_CA_FILE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			log.Fatal(err)
		}
		config.RootCAs = x509.NewCertPool()
		config.RootCAs.AppendCertsFromPEM(pem)
	}
	return config
}

func auth(host string) smtp.Auth {
	if os.Getenv("SMTP_USER") == "" {
		return nil
	}
	return smtp.PlainAuth("", os.Getenv("SMTP_USER"), os.Getenv("SMTP_PASSWORD"), host)
}

// dial opens a client as the package's Client example does; SendMail does the same inside.
func dial(host, addr string) (*smtp.Client, error) {
	var c *smtp.Client
	var err error
	if os.Getenv("SMTP_TLS") == "implicit" {
		conn, dialErr := tls.Dial("tcp", addr, tlsConfig(host))
		if dialErr != nil {
			return nil, dialErr
		}
		c, err = smtp.NewClient(conn, host)
	} else {
		c, err = smtp.Dial(addr)
	}
	if err != nil {
		return nil, err
	}
	if err = c.Hello("localhost"); err == nil && os.Getenv("SMTP_TLS") == "starttls" {
		err = c.StartTLS(tlsConfig(host))
	}
	if a := auth(host); err == nil && a != nil {
		err = c.Auth(a)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func send(c *smtp.Client, m message, data []byte) error {
	if err := c.Mail(m.Sender); err != nil {
		return err
	}
	for _, to := range m.Recipients {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err = w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

func main() {
	oneClient := flag.Bool("one-client", false, "one smtp.Client for the whole batch")
	flag.Parse()
	log.SetFlags(0)
	var batch []message
	manifest, err := os.ReadFile(os.Getenv("HARNESS_MANIFEST"))
	if err == nil {
		err = json.Unmarshal(manifest, &batch)
	}
	if err != nil {
		log.Fatal(err)
	}
	claims, err = os.OpenFile(os.Getenv("HARNESS_CLAIMS"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	host := os.Getenv("SMTP_HOST")
	addr := net.JoinHostPort(host, os.Getenv("SMTP_PORT"))

	if !*oneClient {
		for _, m := range batch {
			data, err := os.ReadFile(m.File)
			if err == nil {
				// SendMail offers STARTTLS when the server does, and refuses PLAIN AUTH without
				// TLS except to localhost: the package's own rules, as an application gets them.
				if os.Getenv("SMTP_TLS") == "none" || os.Getenv("SMTP_TLS") == "" {
					err = smtp.SendMail(addr, auth(host), m.Sender, m.Recipients, data)
				} else {
					err = sendOnce(host, addr, m, data)
				}
			}
			record(m, err)
		}
		return
	}
	c, err := dial(host, addr)
	if err != nil {
		for _, m := range batch {
			record(m, fmt.Errorf("dial: %w", err))
		}
		return
	}
	for _, m := range batch {
		data, err := os.ReadFile(m.File)
		if err == nil {
			err = send(c, m, data)
		}
		record(m, err)
	}
	if err := c.Quit(); err != nil {
		log.Printf("quit: %v", err)
	}
}

// sendOnce is SendMail with the harness's TLS settings (SendMail cannot take a CA file or
// implicit TLS): a client, one message, QUIT.
func sendOnce(host, addr string, m message, data []byte) error {
	c, err := dial(host, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := send(c, m, data); err != nil {
		return err
	}
	return c.Quit()
}
