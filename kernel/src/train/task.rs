//! What one training sequence teaches: a role (world or dynamics model), or one of the four
//! tasks of the foundation material. A recipe turns the foundation tasks on one by one
//! ([`TrainConfig::foundation_tasks`]); the trainer sees every example once per task.

use super::config::TrainConfig;
use crate::model::Role;

/// What one training sequence teaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// The world model (source, action -> target) or the dynamics model (source, target ->
    /// action).
    Role(Role),
    /// Describing a scene in words (a caption of the source or the target).
    Caption,
    /// Drawing a scene from its description.
    Drawing,
    /// The next frame of an unlabelled pair (the target from the source, no action).
    Transition,
    /// Describing what changed between the frames of a pair, naming no action.
    Change,
}

impl Task {
    /// Its name in `metrics.jsonl` (`eval_loss_<name>`) and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Task::Role(r) => r.name(),
            Task::Caption => "captions",
            Task::Drawing => "drawings",
            Task::Transition => "transitions",
            Task::Change => "changes",
        }
    }
}

impl TrainConfig {
    /// The foundation tasks the recipe trains, in the order the trainer interleaves them.
    pub(crate) fn foundation_tasks(&self) -> Vec<Task> {
        [
            (self.captions, Task::Caption),
            (self.drawings, Task::Drawing),
            (self.transitions, Task::Transition),
            (self.changes, Task::Change),
        ]
        .into_iter()
        .filter_map(|(on, task)| on.then_some(task))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Preset;

    #[test]
    fn foundation_tasks_follow_the_recipe_in_a_fixed_order() {
        let mut c = Preset::Tiny.train();
        assert!(c.foundation_tasks().is_empty());
        c.changes = true;
        c.captions = true;
        assert_eq!(c.foundation_tasks(), [Task::Caption, Task::Change]);
        c.drawings = true;
        c.transitions = true;
        assert_eq!(
            c.foundation_tasks(),
            [Task::Caption, Task::Drawing, Task::Transition, Task::Change]
        );
    }
}
