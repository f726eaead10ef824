// The subcommands of the topicbridge executable. Each returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace topicbridge {

int RunCommand(const std::string& config_path);
int CheckCommand(const std::string& config_path);
int StatusCommand(const std::string& config_path);
int FhirpathCommand(const std::string& resource_path, const std::vector<std::string>& variables,
                    const std::string& expression);

}  // namespace topicbridge
