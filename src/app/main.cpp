// topicbridge: Aidbox topic-based subscriptions from the PostgreSQL slot to
// NATS and Kafka. This file only parses the command line.
#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "topicbridge: delivers Aidbox topic notifications from a PostgreSQL logical "
      "replication slot to NATS and Kafka"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "topicbridge 0.1.0");

  std::string config_path;
  auto* run =
      app.add_subcommand("run",
                         "Stream committed changes to the destinations until SIGINT/SIGTERM.\n"
                         "Example: topicbridge run -c examples/topicbridge.yaml");
  run->add_option("-c,--config", config_path, "YAML configuration file")->required();

  auto* check = app.add_subcommand(
      "check",
      "Validate the configuration, topics, destinations and every FHIRPath criterion.\n"
      "Exit 0 when valid, 1 with one line per problem.\n"
      "Example: topicbridge check -c examples/topicbridge.yaml");
  check->add_option("-c,--config", config_path, "YAML configuration file")->required();

  auto* status = app.add_subcommand(
      "status",
      "Print the $status of every destination of a running topicbridge as a table.\n"
      "Example: topicbridge status -c examples/topicbridge.yaml");
  status->add_option("-c,--config", config_path, "YAML configuration of the running instance")
      ->required();

  topicbridge::FhirpathArguments fp;
  auto* fhirpath = app.add_subcommand(
      "fhirpath",
      "Evaluate a FHIRPath expression and print the result as one JSON array line.\n"
      "Exit 2 on a syntax error, 3 on an evaluation error.\n"
      "Examples:\n"
      "  topicbridge fhirpath --resource patient.json \"name.given.first()\"\n"
      "  topicbridge fhirpath --current new.json --previous old.json \\\n"
      "      \"%current.birthDate != %previous.birthDate\"\n"
      "  topicbridge fhirpath --resource obs.json --var limit=180 \"value.value > %limit\"");
  fhirpath->add_option("--resource", fp.resource,
                       "FHIR resource (JSON file): %resource, %context and the start; default "
                       "--current");
  fhirpath->add_option("--current", fp.current, "FHIR resource (JSON file) bound to %current");
  fhirpath->add_option("--previous", fp.previous, "FHIR resource (JSON file) bound to %previous");
  fhirpath->add_option("--var", fp.variables, "a variable: NAME=JSON (repeatable), used as %NAME");
  fhirpath->add_option("expression", fp.expression, "the FHIRPath expression")->required();

  CLI11_PARSE(app, argc, argv);
  if (*run) return topicbridge::RunCommand(config_path);
  if (*check) return topicbridge::CheckCommand(config_path);
  if (*status) return topicbridge::StatusCommand(config_path);
  return topicbridge::FhirpathCommand(fp);
}
