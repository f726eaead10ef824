// The subcommands of the topicbridge executable. Each returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace topicbridge {

int RunCommand(const std::string& config_path);
int CheckCommand(const std::string& config_path);
int StatusCommand(const std::string& config_path);
struct FhirpathArguments {
  std::string resource;  // files; empty: not set
  std::string current;
  std::string previous;
  std::vector<std::string> variables;  // NAME=JSON
  std::string expression;
};
int FhirpathCommand(const FhirpathArguments& arguments);

}  // namespace topicbridge
