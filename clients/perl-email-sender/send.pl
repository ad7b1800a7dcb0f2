#!/usr/bin/perl
# Email::Sender as an application uses it, as a command strategy of ses-fault-harness.
#
#   perl send.pl               Email::Sender::Simple's sendmail with an
#                              Email::Sender::Transport::SMTP: a new connection for each message
#                              (the transport's own behaviour)
#   perl send.pl --persistent  the same with Email::Sender::Transport::SMTP::Persistent, which
#                              "only reconnects when the existing connection fails"
#
# The messages are sent as the application has them, rendered (the .eml files), with the
# envelope passed to sendmail as Email::Sender::Manual::QuickStart shows; a failure is caught
# with Try::Tiny and the loop goes on. One JSON claim a line goes to HARNESS_CLAIMS.
use strict;
use warnings;

use Email::Sender::Simple qw(sendmail);
use Email::Sender::Transport::SMTP;
use Email::Sender::Transport::SMTP::Persistent;
use JSON::PP;
use Try::Tiny;

my $persistent = grep { $_ eq '--persistent' } @ARGV;
my $json = JSON::PP->new->utf8->canonical;
my $batch = do {
    local $/;
    open my $manifest, '<:raw', $ENV{HARNESS_MANIFEST} or die "manifest: $!";
    $json->decode(<$manifest>);
};
open my $claims, '>>:raw', $ENV{HARNESS_CLAIMS} or die "claims: $!";
$claims->autoflush(1);

my %options = (host => $ENV{SMTP_HOST}, port => $ENV{SMTP_PORT});
my $tls = $ENV{SMTP_TLS} // 'none';
$options{ssl} = $tls eq 'implicit' ? 'ssl' : $tls eq 'starttls' ? 'starttls' : 0;
$options{ssl_options} = {SSL_ca_file => $ENV{SMTP_CA_FILE}} if $ENV{SMTP_CA_FILE};
if ($ENV{SMTP_USER}) {
    $options{sasl_username} = $ENV{SMTP_USER};
    $options{sasl_password} = $ENV{SMTP_PASSWORD};
}
my $transport = $persistent
    ? Email::Sender::Transport::SMTP::Persistent->new(\%options)
    : Email::Sender::Transport::SMTP->new(\%options);

sub claim {
    my ($message, $status, $code, $text) = @_;
    print {$claims} $json->encode(
        {id => $message->{id}, status => $status, code => $code, text => $text}) . "\n";
}

sub slurp {
    my ($path) = @_;
    local $/;
    open my $file, '<:raw', $path or die "$path: $!";
    return <$file>;
}

for my $message (@$batch) {
    try {
        sendmail(
            slurp($message->{file}),
            {from => $message->{sender}, to => $message->{recipients}, transport => $transport});
        claim($message, 'sent', undef, undef);
    } catch {
        my $failure = $_;
        # An Email::Sender::Failure carries the server's code and its message ends with the reply.
        my ($code, $text) = (undef, "$failure");
        if (ref $failure and $failure->isa('Email::Sender::Failure')) {
            $code = $failure->code ? 0 + $failure->code : undef;
            $text = $failure->message;
        }
        $text =~ s/\s+\z//;
        claim($message, 'failed', $code, $text);
        warn "could not send $message->{id}: $text\n";
    };
}
$transport->disconnect if $persistent;
